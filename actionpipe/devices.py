"""Device selection shared by every stage: ``auto`` prefers CUDA, an explicit GPU fails clearly."""
from __future__ import annotations

import re

from .errors import ActionpipeError, UsageError


def resolve_device(device: str = "auto") -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` to a torch device name; auto prefers CUDA."""
    import torch

    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if device not in ("auto", "cpu") and not match:
        raise UsageError(None, f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if not torch.cuda.is_available():
        raise ActionpipeError(None, f"--device {device}: CUDA is not available on this machine")
    index = int(match.group(1) or 0) if match else 0
    if index >= torch.cuda.device_count():
        raise ActionpipeError(None, f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    return f"cuda:{index}"
