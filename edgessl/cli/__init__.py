"""`edgessl` command line. Each command parses, loads the recipe, and calls the library: `app.py` holds the app and
what the commands share, `train.py` the commands up to an encoder, `deploy.py` those from it to firmware."""

from edgessl.cli.app import app, main

# isort: split
# importing a module registers its commands; train's first, so that `--help` lists the path in order
from edgessl.cli import train

# isort: split
from edgessl.cli import deploy

__all__ = ["app", "deploy", "main", "train"]
