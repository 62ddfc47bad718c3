"""Repetition counting from a tracked person's skeleton sequence.
Imports only numpy/scipy; nothing else of actionpipe."""
from .repetitions import (REPETITIVE_CLASSES, Repetition, RepetitionCounter, Repetitions,
                          count_repetitions, reps_for)

__all__ = ["count_repetitions", "Repetitions", "Repetition", "REPETITIVE_CLASSES", "reps_for",
           "RepetitionCounter"]
