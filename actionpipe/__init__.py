"""actionpipe: video to human-action class probabilities."""

__version__ = "0.1.0"
