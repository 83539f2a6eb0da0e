"""Device secrets Russet escrows (issue #15): see `russet.escrow.service`."""
