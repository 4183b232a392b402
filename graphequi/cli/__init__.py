"""The ``graphequi`` command line."""
from graphequi.cli.main import main

__all__ = ["main"]
