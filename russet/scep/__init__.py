"""SCEP (RFC 8894): devices obtain their identity certificate from Russet's CA with a key they make.

`responder` holds the protocol decisions, `message` the pkiMessage/CertRep structures, `envelope`
the CMS EnvelopedData encryption, and `http` the `/scep` endpoint.
"""

from russet.scep.message import FailInfo, Malformed, MessageType, PkiStatus
from russet.scep.responder import CAPABILITIES, Outcome, ScepResponder

__all__ = ["CAPABILITIES", "FailInfo", "Malformed", "MessageType", "Outcome", "PkiStatus", "ScepResponder"]
