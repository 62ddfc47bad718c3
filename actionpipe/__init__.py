"""actionpipe: video to human-action class probabilities.

``from actionpipe import ActionModel`` (see :mod:`actionpipe.api`). The names below are imported on
first use, so ``import actionpipe`` stays fast (no torch, OpenCV or ultralytics until needed).
"""

__version__ = "0.1.0"

_EXPORTS = {"ActionModel": "api", "Result": "api", "Person": "api", "ModelCard": "model.cards",
            "PoseFile": "pose.posefile", "Sample": "skeleton.pack", "Prediction": "model.infer",
            "ActionpipeError": "core.errors", "count_repetitions": "counting"}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'actionpipe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
