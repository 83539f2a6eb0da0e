"""Russet: a self-hosted Apple MDM server with a ledger of what it tells Apple."""

__version__ = "0.1.0"
