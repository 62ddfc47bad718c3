#!/usr/bin/env python3
"""ST-GCN's temporal convolution as a nested Winograd F(3,3)⊗F(3,3) against oneDNN's direct one.

An experiment kept as a measurement (docs/performance.md, ST-GCN): at fp32 the inference plan
already runs at the CPU's matrix-product rate, so 2× the reference needs less arithmetic. Split
the 9 taps into three 3-tap filters 3 frames apart: each is an F(3,3) (3 outputs from 5
products), and their sum over the 3-frame tiles is again a 3-tap convolution, done by F(3,3)
again: 25 channel products per 9 output frames instead of 81. A stride-2 convolution is first
split into its even and odd frames (twice the channels, ⌈taps/2⌉ taps). Per layer shape of the
full-width model: the largest difference from float64 (direct fp32 beside it) and the time.

    python benchmarks/bench_winograd.py [--threads 1] [--rows 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

POINTS = (0.0, 1.0, -1.0, 0.5)   # F(3,3)'s finite interpolation points; the fifth is ∞
TAPS, TILE = 9, 9
SPAN = TILE + TAPS - 1            # input frames one tile of 9 outputs reads


def toom_cook_f33() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F(3,3)'s output (3×5), filter (5×3) and input (5×5) transforms: ``AT @ ((G @ g) * (BT @ d))``
    is the correlation ``y[s] = Σ_b g[b] d[s + b]``."""
    m, r, n = 3, 3, 5
    AT, G = np.zeros((m, n)), np.zeros((n, r))
    for j, p in enumerate(POINTS):
        AT[:, j] = [p ** i for i in range(m)]
        G[j] = [p ** k for k in range(r)] / np.prod([p - q for q in POINTS if q != p])
    AT[m - 1, n - 1] = G[n - 1, r - 1] = 1.0   # the point at infinity
    rows = np.einsum("ij,jk->ikj", AT, G).reshape(m * r, n)   # BT solves Σ_j AT G BT = [l == i + k]
    target = np.zeros((m * r, n))
    for i in range(m):
        for k in range(r):
            target[i * r + k, i + k] = 1.0
    return AT, G, np.linalg.lstsq(rows, target, rcond=None)[0]


class WinogradTemporalConv:
    """``F.conv2d(x, weight, bias, (stride, 1), (padding, 0))`` for channels-last ``(rows, T, V, C)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int):
        taps = weight.shape[2]
        w = weight[..., 0].double()
        if stride == 2:   # even taps read the even frames, odd taps the odd ones: stacked channels
            w = torch.cat([w[..., 0::2], F.pad(w[..., 1::2], (0, taps % 2))], dim=1)
        w = F.pad(w, (0, TAPS - w.shape[-1]))
        AT, G, BT = toom_cook_f33()
        data = np.zeros((25, SPAN))
        for l1 in range(5):
            for l2 in range(5):
                data[:, 3 * l1 + l2] += np.kron(BT[:, l1], BT[:, l2])
        self.input_transform = torch.from_numpy(data).float()
        self.output_transform = torch.from_numpy(np.kron(AT, AT)).float()
        self.weight = torch.einsum("jk,oik->jio", torch.from_numpy(np.kron(G, G)), w).float().contiguous()
        self.bias, self.stride, self.padding, self.taps = bias, stride, padding, taps

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows, t, v, c = x.shape
        t_out = (t + 2 * self.padding - self.taps) // self.stride + 1
        tiles = -(-t_out // TILE)
        length = self.stride * (TILE * tiles + TAPS - 1)
        padded = F.pad(x, (0, 0, 0, 0, self.padding, length - t - self.padding))
        if self.stride == 2:
            padded = padded.view(rows, length // 2, 2, v, c).transpose(2, 3).reshape(rows, length // 2, v, 2 * c)
            c *= 2
        vc = v * c
        windows = padded.as_strided((SPAN, rows, tiles, vc), (vc, padded.shape[1] * vc, TILE * vc, 1))
        transformed = torch.mm(self.input_transform, windows.reshape(SPAN, -1))
        products = torch.bmm(transformed.view(25, -1, c), self.weight)
        c_out = products.shape[-1]
        per_tile = products.view(25, rows * tiles, v * c_out).transpose(0, 1)
        out = torch.matmul(self.output_transform, per_tile)
        return out.view(rows, tiles * TILE, v, c_out)[:, :t_out].add_(self.bias).contiguous()


def best_ms(fn, rounds: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=2, help="batch × people (2: batch 1 with M=2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{args.threads} thread(s), {args.rows} rows, V=18; best of 20, ms per call")
    print("stride  T    C  error(winograd)  error(direct)  direct ms  winograd ms  speed-up")
    with torch.inference_mode():
        for stride, t, c in [(1, 150, 64), (1, 75, 128), (1, 38, 256), (2, 150, 128), (2, 75, 256)]:
            weight = torch.randn(c, c, 9, 1) / (9 * c) ** 0.5
            bias, x = torch.randn(c), torch.randn(args.rows, t, 18, c)
            conv = WinogradTemporalConv(weight, bias, stride, 4)
            exact = F.conv2d(x.double().permute(0, 3, 1, 2), weight.double(), bias.double(), (stride, 1), (4, 0))
            direct_out = F.conv2d(x.permute(0, 3, 1, 2), weight, bias, (stride, 1), (4, 0))
            errors = [(out.double() - exact.permute(0, 2, 3, 1)).abs().max().item()
                      for out in (conv(x), direct_out.permute(0, 2, 3, 1))]
            weight_cl = weight.contiguous(memory_format=torch.channels_last)
            direct = best_ms(lambda: F.conv2d(x.permute(0, 3, 1, 2), weight_cl, bias, (stride, 1), (4, 0)))
            winograd = best_ms(lambda: conv(x))
            print(f"{stride:6d} {t:4d} {c:4d} {errors[0]:16.1e} {errors[1]:14.1e} {direct:10.2f} "
                  f"{winograd:12.2f} {direct / winograd:8.2f}x")


if __name__ == "__main__":
    main()
