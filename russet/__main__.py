"""`python -m russet` is the `russet` command."""

from russet.cli.main import main

main()
