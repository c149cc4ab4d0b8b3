"""`python -m edgessl.cli` runs the command line."""

from edgessl.cli import main

main()
