"""The sample shipped in the wheel as the package data ``actionpipe.samples`` (setup.cfg): ``squat.mp4``
(CC BY 3.0, credits in README.md), the INT8 pose model's calibration frames (``actionpipe.pose.int8``)."""
