"""Recovery Lock and firmware passwords Russet generates for a device.

Apple allows low-ASCII printable characters (0x20-0x7E) so that every character can be typed at
the EFI or recoveryOS prompt. Russet uses a 31-symbol subset without look-alikes (no 0/O, 1/I/L),
in dash-separated groups, so a person reading one aloud to someone at the Mac gets it right:
20 symbols from `secrets` give 99 bits, far beyond guessing at a prompt that throttles.
"""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
GROUPS = 5
GROUP_LENGTH = 4


def generate() -> str:
    """A new password, e.g. `K7QM-3XHD-9PWA-TN4E-BZ2R`."""
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS))

