"""Everything Russet exchanges with Apple's services goes through here.

`gateway` is the only code that opens connections to Apple; `catalogue` declares every field
it may send or receive; `ledger` records each exchange field by field; `connections` tracks
the configured connections and can disconnect and purge them.
"""
