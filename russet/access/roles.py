"""The three roles of people and API keys, ordered: admin > operator > auditor.

* admin: everything, including Apple connections, escrowed secrets, purge, API keys and users;
* operator: devices and commands (send commands, push, forget or re-enroll a device); no Apple
  connections, no secrets, no purge, no configuration;
* auditor: read-only (inventory, ledger, reports, the audit log).
"""

from __future__ import annotations

from enum import IntEnum

from russet.kernel.errors import Invalid


class Role(IntEnum):
    AUDITOR = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    def allows(self, needed: Role) -> bool:
        """Whether someone with this role may do what needs `needed`."""
        return self >= needed

    @classmethod
    def parse(cls, text: str) -> Role:
        """`admin`, `operator` or `auditor` (any case); Invalid otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise Invalid(f"unknown role {text!r}: use admin, operator or auditor") from None


ROLE_NAMES = tuple(r.label for r in sorted(Role, reverse=True))  # admin, operator, auditor
