"""The action model: ST-GCN, model cards, window aggregation, open-set rejection, label maps and `infer`.
Imports actionpipe.skeleton, actionpipe.pose and actionpipe.core.
"""
