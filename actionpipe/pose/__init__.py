"""The `pose` stage: YOLO11n-pose (torch or OpenVINO), tracking, the pose file format and joint layouts.
Imports actionpipe.video and actionpipe.core.
"""
