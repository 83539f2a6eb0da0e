"""Storage infrastructure: the engine and migrations (`db`), the secret box, the infrastructure
tables and their stores (settings, certificates, API keys), and `bundle.Storage`.

Kept free of imports so that a feature's store can use `russet.storage.db` without pulling in
every other store.
"""
