"""Where classify runs: `--engine ray` (Ray Data) beside the local, in-process default.
Imports actionpipe.pipeline and below; the Python API hands it the model class.
"""
