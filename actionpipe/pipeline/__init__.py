"""The stages chained in one process: `classify` (videos, timelines, people), `watch` (live) and speed profiles.
Imports actionpipe.outputs, actionpipe.model and the stages below; never actionpipe.engines or cli.
"""
