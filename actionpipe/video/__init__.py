"""Video in and out: decoding with fps resampling, the `extract` stage, prefetching, live sources, writers.
Imports only actionpipe.core.
"""
