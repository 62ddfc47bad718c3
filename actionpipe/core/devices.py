"""Device, thread and pose-backend selection shared by every stage.

``auto`` prefers CUDA, an explicit GPU fails clearly. CPU work (the pose model, the ST-GCN) runs on
:func:`cpu_threads` threads, set explicitly: ultralytics would otherwise leave torch on
``cpu_count - 1`` (one thread on a 2-core machine).
"""
from __future__ import annotations

import os
import re

from actionpipe.core.errors import ActionpipeError, UsageError

POSE_BACKENDS = ("auto", "openvino", "torch")  # auto: OpenVINO on the CPU, torch on CUDA
POSE_PRECISIONS = ("fp32", "bf16", "int8")     # OpenVINO only; torch runs FP32
DEFAULT_POSE_BACKEND = "auto"
# bf16 where the CPU computes it natively, fp32 elsewhere (pose.estimator.runnable_precision): on the
# 60 real val clips bf16 gave the same top-1 and honest rate as fp32 at twice the speed (docs/performance.md).
DEFAULT_POSE_PRECISION = "bf16"


STGCN_ENGINES = ("auto", "openvino", "torch")   # auto: OpenVINO on the CPU, torch on CUDA


def nvidia_gpu_present() -> bool:
    """Whether this machine shows an NVIDIA GPU at all, asked without importing torch (seconds of
    start-up): the driver's device files, or a CUDA_VISIBLE_DEVICES that hides every GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/dev/nvidia0") or os.path.isdir("/proc/driver/nvidia/gpus")


def resolve_device(device: str = "auto") -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` to a torch device name; auto prefers CUDA. torch is
    imported only when a GPU may be there."""
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if device not in ("auto", "cpu") and not match:
        raise UsageError(None, f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device == "cpu" or (device == "auto" and not nvidia_gpu_present()):
        return "cpu"
    import torch

    if device == "auto" and not torch.cuda.is_available():
        return "cpu"
    if not torch.cuda.is_available():
        raise ActionpipeError(None, f"--device {device}: CUDA is not available on this machine")
    index = int(match.group(1) or 0) if match else 0
    if index >= torch.cuda.device_count():
        raise ActionpipeError(None, f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    return f"cuda:{index}"


def resolve_stgcn_engine(engine: str, device: str) -> str:
    """``openvino`` or ``torch`` for the ST-GCN on a resolved ``device``: auto is OpenVINO on the CPU
    (no torch at inference), torch on CUDA."""
    if engine not in STGCN_ENGINES:
        raise UsageError(None, f"ST-GCN engine must be one of {', '.join(STGCN_ENGINES)}, got {engine!r}")
    if engine == "openvino" and device != "cpu":
        raise UsageError(None, f"the OpenVINO ST-GCN runs on the CPU, not {device}")
    return ("openvino" if device == "cpu" else "torch") if engine == "auto" else engine


def resolve_pose_backend(backend: str, device: str) -> str:
    """``openvino`` or ``torch`` for a resolved ``device``: auto picks OpenVINO on the CPU."""
    if backend not in POSE_BACKENDS:
        raise UsageError(None, f"--pose-backend must be one of {', '.join(POSE_BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "openvino" if device == "cpu" else "torch"
    if backend == "openvino" and device != "cpu":
        raise UsageError(None, f"--pose-backend openvino runs on the CPU, not {device} (use --device cpu)")
    return backend


# As the user set it: importing ultralytics sets OMP_NUM_THREADS=1 when it is unset.
_USER_OMP_THREADS = os.environ.get("OMP_NUM_THREADS")


def cpu_threads() -> int:
    """Threads for CPU inference: ``$OMP_NUM_THREADS`` when the user set it (e.g. one per process
    when sharding), else every core this process may run on."""
    try:
        return max(1, int(_USER_OMP_THREADS))
    except (TypeError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_cpu_threads() -> int:
    """Set torch's intra-op threads to :func:`cpu_threads` and keep ultralytics from changing them."""
    import sys

    import torch

    threads = cpu_threads()
    torch.set_num_threads(threads)
    if "ultralytics.utils.torch_utils" in sys.modules:
        # select_device() calls torch.set_num_threads(NUM_THREADS) on every model set-up.
        sys.modules["ultralytics.utils.torch_utils"].NUM_THREADS = threads
    return threads
