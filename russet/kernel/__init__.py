"""The kernel: what every part of Russet may use and that uses nothing of Russet's (error kinds).

It imports nothing from `russet`, so any layer can depend on it without a cycle.
"""
