"""Skeletons after pose: ST-GCN graphs, `pack` (pose file to N,C,T,V,M) and format conversion.
Imports actionpipe.pose, actionpipe.video and actionpipe.core.
"""
