"""The Apple-connection kit: what ABM/ASM and Apps and Books (and the next Apple service)
configure rather than copy.

`russet.apple.connections` is the registry (state, leases, disconnect, purge); this package holds
the pieces each feature used to write again for itself, one job a module:

- `errors`: the one error family of an Apple connection, by kind (features keep their names);
- `tokens`: the sealed credentials row (`ConnectionRows`: names, active names, seal/open, the
  registry's state in the same transaction) and the token-expiry warning;
- `client`: the base of a feature's Apple client over the gateway (`Reply`, JSON bodies, ledger
  rows for what came back, the error sentence);
- `admin`: what a feature's service answers alike (name rule, the gateway's refusals as the
  family's errors, refusing an expired token, summaries against the registry, ISO times);
- `hooks`: the disconnect/purge hooks a feature declares as data;
- `columns`: the columns every feature's connection table has (the only import a tables module
  may take from outside SQLAlchemy and the MetaData, see `tests/test_tables.py`).

Nothing here imports `russet.runtime` or takes the whole server: a feature's service hands in
the engine, box, gateway and registry it was given.
"""
