"""The composition layer's parts, beside the root (`russet/runtime.py`), which uses them.

- `storage.py`: `Storage`, the stores the root opens over one engine and hands to services;
- `adapters.py`: the small classes that satisfy one feature's port with another feature's service;
- `sealed.py`: every feature's sealed columns, gathered for key rotation (`russet.storage.rotation`).

Only the root and the surfaces import this package; nothing below them does (pyproject.toml's
layers contract).
"""
