"""The click layer: ``actionpipe`` and its commands, a thin layer over the library.
Imports the library (api, pipeline, training, ...); nothing imports from it.
"""
from actionpipe.cli.main import main

__all__ = ["main"]
