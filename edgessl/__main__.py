"""`python -m edgessl` (and `torchrun -m edgessl pretrain ...`) run the CLI."""

from edgessl.cli import app

app()
