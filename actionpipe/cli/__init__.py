"""The click layer: ``actionpipe`` and its commands, a thin layer over the library."""
from .main import main

__all__ = ["main"]
