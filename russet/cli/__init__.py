"""The `russet` command line."""
