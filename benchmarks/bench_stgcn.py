"""ST-GCN forward throughput (samples/s): actionpipe's model against the reference formulation.

Kinetics shape: T=150 frames, M=2 people, V=18 joints (openpose18), 400 classes; batch 1 and 16;
full width (64) and a CPU-sized width (32); CPU always, CUDA when available.

``reference`` runs the same weights through the reference implementation's forward (NCHW tensors,
``einsum('nkctv,kvw->nctw')`` on a permuted copy); ``actionpipe`` is ``STGCN.forward`` in eval
mode under ``torch.inference_mode()``, i.e. its :class:`~actionpipe.model.stgcn.InferencePlan` (batch
norms folded, channels-last matrix products). Both outputs are checked to agree (1e-4) before
timing. Variants are timed interleaved and the best round is reported, so load from other
processes on a shared machine biases both alike. ``--clock cpu`` times CPU seconds of the process
instead of wall-clock seconds: steadier on a busy machine with ``--threads 1`` (with more threads
it counts the time threads spin while waiting for each other).

    python benchmarks/bench_stgcn.py [--threads N] [--rounds R] [--widths 64 32] [--batches 1 16]
                                     [--clock wall|cpu]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from actionpipe.model.stgcn import STGCN


def reference_forward(model: STGCN, x: torch.Tensor) -> torch.Tensor:
    """The authors' forward pass, step for step, on ``model``'s modules (the naive baseline)."""
    n, c, t, v, m = x.shape
    x = x.permute(0, 4, 3, 1, 2).contiguous().view(n * m, v * c, t)
    x = model.data_bn(x).view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
    for i, block in enumerate(model.st_gcn_networks):
        A = model.A * model.edge_importance[i]
        residual = 0 if block.residual is None else block.residual(x)
        y = block.gcn.conv(x)
        y = y.view(y.shape[0], A.shape[0], -1, y.shape[2], y.shape[3])
        y = torch.einsum("nkctv,kvw->nctw", y, A).contiguous()
        x = F.relu(block.tcn(y) + residual)
    x = F.avg_pool2d(x, x.shape[2:]).view(n, m, -1, 1, 1).mean(dim=1)
    return model.fcn(x).view(n, -1)


def best_seconds(fns: dict, x: torch.Tensor, rounds: int, sync, clock=time.perf_counter) -> dict[str, float]:
    """Best-of-``rounds`` seconds per call for each function, calls interleaved round by round."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():  # warm-up: allocator, oneDNN/cuDNN kernels for these shapes
        fn(x)
    sync()
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            fn(x)
            sync()
            best[name] = min(best[name], clock() - start)
    return best


def run(device: str, widths, batches, rounds: int, frames: int, people: int,
        clock=time.perf_counter) -> list[tuple]:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    for width in widths:
        torch.manual_seed(0)
        model = STGCN(num_class=400, layout="openpose18", base_channels=width).eval().to(device)
        fns = {"reference": lambda x, m=model: reference_forward(m, x), "actionpipe": model}
        for batch in batches:
            x = torch.randn(batch, 3, frames, 18, people, device=device)
            with torch.inference_mode():
                torch.testing.assert_close(model(x), reference_forward(model, x), rtol=1e-4, atol=1e-4)
                seconds = best_seconds(fns, x, rounds, sync, clock)
            for name, s in seconds.items():
                rows.append((device, width, batch, name, s * 1000, batch / s,
                             seconds["reference"] / s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--people", type=int, default=2)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock seconds, or CPU seconds of the process (CPU rows only)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"ST-GCN forward, T={args.frames} M={args.people} V=18, 400 classes, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, best of {args.rounds}, {args.clock} clock"
          + (f", CUDA: {torch.cuda.get_device_name()}" if "cuda" in devices else ", no CUDA"))
    print(f"{'device':<6} {'width':>5} {'batch':>5} {'variant':<10} {'ms/batch':>10} "
          f"{'samples/s':>10} {'speed-up':>8}")
    for device in devices:
        clock = time.process_time if args.clock == "cpu" and device == "cpu" else time.perf_counter
        for row in run(device, args.widths, args.batches, args.rounds, args.frames, args.people, clock):
            print("{:<6} {:>5} {:>5} {:<10} {:>10.1f} {:>10.1f} {:>7.2f}x".format(*row))


if __name__ == "__main__":
    main()
