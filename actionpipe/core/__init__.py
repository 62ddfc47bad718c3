"""Shared plumbing every stage uses: user errors, safe file I/O, stderr console, device choice.
Imports nothing else of actionpipe.
"""
