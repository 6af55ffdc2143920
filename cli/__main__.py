"""`python -m cli` is the `retention` command."""

from cli.app import main

main()
