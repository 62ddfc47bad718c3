"""The ST-GCN on the CPU through OpenVINO: inference without importing torch.

A card's weights are exported once (torch trace -> ``openvino.convert_model``, batch and window
length dynamic, FP32) into ``CACHE/stgcn-openvino/<weights sha256>-ov<version>-v<EXPORT_VERSION>/``
beside the pose model's export, and verified by a manifest of hashes like it. The exported graph
returns the pooled features and the logits of each window, the two things
:func:`actionpipe.model.infer.run_windows` takes from the torch model; torch is imported only to
make the export. Logits agree with the torch model's to about 1e-5 (tests check 1e-4).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from actionpipe.core.devices import cpu_threads
from actionpipe.core.fileio import sha256_file
from actionpipe.pose.openvino import cache_root, cached_export

EXPORT_VERSION = 1


def export_dir(digest: str) -> Path:
    import openvino

    version = openvino.__version__.split("-")[0]
    return cache_root() / "stgcn-openvino" / f"{digest[:16]}-ov{version}-v{EXPORT_VERSION}"


def _export(card, folder: Path) -> None:
    import openvino as ov
    import torch

    model = card.load_model("cpu")

    class Windows(torch.nn.Module):
        """features and logits of each window, as run_windows computes them."""

        def __init__(self, stgcn):
            super().__init__()
            self.stgcn = stgcn

        def forward(self, x):
            f = self.stgcn.features(x)
            return f, self.stgcn.fcn(f[:, :, None, None]).flatten(1)

    channels, joints, people = model.in_channels, model.layout.num_joints, max(1, card.preprocessing.max_people)
    example = torch.zeros(2, channels, 32, joints, people)
    windows = Windows(model).eval()
    for p in windows.parameters():
        p.requires_grad = False
    # Traced through the layers (grad mode on, no parameter wanting one): the folded inference plan
    # reshapes by traced sizes, which would fix the batch and window length; OpenVINO folds the
    # batch norms itself.
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")   # torch.jit.trace's deprecation and tracer notices
        traced = torch.jit.trace(windows, example, strict=False, check_trace=False)
        ov_model = ov.convert_model(traced, example_input=example,
                                    input=[ov.PartialShape([-1, channels, -1, joints, people])])
    ov.save_model(ov_model, folder / "model.xml", compress_to_fp16=False)


def ensure_export(card) -> Path:
    """The verified export folder of the card's weights, exporting first when missing or damaged."""
    digest = card.weights_sha256 or sha256_file(card.weights_path)
    return cached_export(export_dir(digest), digest, lambda tmp: _export(card, tmp), "the ST-GCN", EXPORT_VERSION)


class OpenVinoSTGCN:
    """A card's ST-GCN compiled for the CPU: ``windows(x)`` -> (features, logits) as numpy."""

    def __init__(self, card):
        import openvino as ov

        folder = ensure_export(card)
        core = ov.Core()
        # Latency hint, as many threads as the project uses elsewhere: one request at a time.
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": cpu_threads(),
                  "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = core.compile_model(core.read_model(folder / "model.xml"), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def windows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return np.array(out[0]), np.array(out[1])
