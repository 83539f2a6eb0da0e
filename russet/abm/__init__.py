"""Apple Business Manager / Apple School Manager: Automated Device Enrollment ("DEP").

Named connections (one per ABM/ASM "MDM server"), each with its own key pair and server token;
device listing and incremental sync; enrollment profiles and their assignment. Everything sent
to or received from Apple goes through `russet.apple.gateway`, field by field into the ledger.

Kept light on purpose: `russet.runtime` imports `russet.abm.hooks` at start.
"""
