"""GPU GEMM benchmark (issue 7): dlcore's CUDA GEMMs side by side with PyTorch (cuBLAS) on the
same device, in one run, against the issue's goals.

    python bench/bench_cuda_gemm.py                 # the goals table, every precision built
    python bench/bench_cuda_gemm.py --variant       # every float32 kernel forced, to set the rule
    python bench/bench_cuda_gemm.py --tc-variant    # every tensor-core tile forced (64, 128 mma.sync;
                                                    # 256 wgmma on sm_90), to set gemm_tc's rule
    python bench/bench_cuda_gemm.py --shapes 4096,fc --precisions fp32 --repeats 5
    DLCORE_GEMM_CP_ASYNC=1 python bench/bench_cuda_gemm.py   # the cp.async rule on where a build
                                                             # has kCpAsyncVerified false

Rows (C (M, N) = A (M, K) @ B (K, N), all row-major, "NN"): the squares 1024..8192 and the
training shapes fc 64x4096x1024 (a wide Linear, batch 64), lenet 256x120x400 (LeNet-5 fc1,
batch 256), im2col 4096x64x576 (a 3x3x64 conv as GEMM), wide 8192x2048x512.

Precisions, each against its cuBLAS counterpart:
  fp32  dlcore.matmul on float32 tensors ("highest": the SIMT kernels of csrc/cuda/gemm.cu);
        torch.matmul with torch.backends.cuda.matmul.allow_tf32 = False.
  tf32  dlcore.cuda.kernels.gemm_tc.gemm_tc(A, B, mode="tf32") when that module exists;
        torch.matmul on float32 with allow_tf32 = True.
  bf16  gemm_tc(A, B, mode="bf16") on the float32 operands (its BF16 rounding included);
        torch.matmul on bfloat16 tensors.
--variant times every float32 kernel of dlcore.cuda.kernels.gemm.variants() through
gemm_with_tile (the cp.async ones at several split-K counts, "rule" = the rule's count),
each beside cuBLAS FP32, so the GPU session can set the selection rule from numbers.

Timing: CUDA events (dlcore.cuda.Event / torch.cuda.Event) around `iters` back-to-back calls
on the library's stream, after a warm-up; the median over `--repeats` samples, in ms per
call; iters is chosen so one sample lasts >= 20 ms of GPU time. Inputs are standard-normal
(fixed seed, never zeros); when one problem's A, B and C fit in twice the L2 (50 MB on an
H100), the calls rotate over several input sets (2 x L2 bytes in all, at most 32 sets) so
no call finds its operands left in L2 by the one before. TFLOP/s = 2 M N K / time.

Goals (issue 7): fp32 >= 0.90x cuBLAS on the squares >= 2048; tf32 and bf16 >= 0.75x on the
squares >= 4096; >= 0.80x on the training shapes (every precision); "-" where none applies.
"""
import argparse
import datetime
import math
import os
import statistics
import subprocess
import sys

import numpy as np

L2_BYTES = 50 * 2**20  # H100 SXM: 50 MB of L2
MAX_SETS = 32
TARGET_MS = 20.0       # GPU time of one sample

SQUARES = {str(n): (n, n, n) for n in (1024, 2048, 4096, 8192)}
TRAINING = {
    "fc": (64, 4096, 1024),
    "lenet": (256, 120, 400),
    "im2col": (4096, 64, 576),
    "wide": (8192, 2048, 512),
}
SHAPES = {**SQUARES, **TRAINING}
PRECISIONS = ("fp32", "tf32", "bf16")

# Hooks (a test harness without a GPU replaces these): where tensors go and how each library
# is synchronised and timed.
DEVICE = "cuda"


def goal(shape_name, precision):
    """The issue's ratio goal for a row, or None."""
    M = SHAPES[shape_name][0]
    if shape_name in TRAINING:
        return 0.80
    if precision == "fp32" and M >= 2048:
        return 0.90
    if precision in ("tf32", "bf16") and M >= 4096:
        return 0.75
    return None


def input_sets(M, N, K, itemsize=4):
    """How many (A, B) sets to rotate over: enough to exceed 2 x L2 when one set fits."""
    one = (M * K + K * N + M * N) * itemsize
    return 1 if one >= 2 * L2_BYTES else min(MAX_SETS, math.ceil(2 * L2_BYTES / one))


def time_calls(calls, event, sync, repeats):
    """Median GPU ms per call of `calls` (a list of thunks, run round-robin), timed with
    events from `event()` (objects with record() and elapsed_time(end) in ms)."""
    def sample(iters):
        start, end = event(), event()
        start.record()
        for i in range(iters):
            calls[i % len(calls)]()
        end.record()
        sync()
        return start.elapsed_time(end) / iters

    for fn in calls:  # warm-up: first launches, allocator, every input set touched
        fn()
    sync()
    est = max(sample(max(len(calls), 3)), 1e-4)
    iters = max(len(calls), min(2000, math.ceil(TARGET_MS / est)))
    return statistics.median(sample(iters) for _ in range(repeats))


class Dlcore:
    """dlcore's calls for one precision or forced kernel, over `sets` input sets."""

    def __init__(self, mods, host_sets, layout="NN"):
        self.mods = mods
        self.tensors = [as_layout(mods.dlcore.tensor(a, device=DEVICE), mods.dlcore.tensor(b, device=DEVICE), layout)
                        for a, b in host_sets]

    def sync(self):
        self.mods.dlcore.cuda.synchronize()

    def event(self):
        return self.mods.dlcore.cuda.Event()

    def calls(self, precision=None, kernel=None, splits=0, tc_tile=0):
        d = self.mods.dlcore
        if tc_tile:
            gemm_tc_with_tile = self.mods.gemm_tc_with_tile
            return [lambda a=a, b=b: gemm_tc_with_tile(tc_tile, a._data, b._data, mode=precision)
                    for a, b in self.tensors]
        if kernel is not None:
            gemm_with_tile = self.mods.gemm_with_tile
            return [lambda a=a, b=b: gemm_with_tile(kernel, a._data, b._data, splits=splits) for a, b in self.tensors]
        if precision == "fp32":
            return [lambda a=a, b=b: d.matmul(a, b) for a, b in self.tensors]
        mode = {"tf32": "tf32", "bf16": "bf16"}[precision]
        gemm_tc = self.mods.gemm_tc
        return [lambda a=a, b=b: gemm_tc(a._data, b._data, mode=mode) for a, b in self.tensors]


class Torch:
    """torch's calls (cuBLAS) for one precision over the same input sets."""

    def __init__(self, torch, host_sets, layout="NN"):
        self.torch = torch
        self.f32 = [as_layout(torch.from_numpy(a).to(DEVICE), torch.from_numpy(b).to(DEVICE), layout)
                    for a, b in host_sets]
        self.b16 = None

    def sync(self):
        self.torch.cuda.synchronize()

    def event(self):
        return self.torch.cuda.Event(enable_timing=True)

    def calls(self, precision):
        t = self.torch
        t.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        if precision == "bf16":
            if self.b16 is None:
                self.b16 = [(a.to(t.bfloat16), b.to(t.bfloat16)) for a, b in self.f32]
            pairs = self.b16
        else:
            pairs = self.f32
        return [lambda a=a, b=b: t.matmul(a, b) for a, b in pairs]


class Modules:
    """The libraries, imported once: dlcore (+ its kernel modules) and torch."""

    def __init__(self):
        import dlcore
        import dlcore.cuda
        from dlcore.cuda.kernels.gemm import choice, gemm_with_tile, variants

        self.dlcore, self.gemm_with_tile, self.variants, self.choice = dlcore, gemm_with_tile, variants, choice
        gemm_tc = gemm_tc_with_tile = None
        self.tc_tiles = ()
        if hasattr(dlcore._C.cuda, "gemm_tc"):  # the tensor-core kernels are built
            from dlcore.cuda.kernels.gemm_tc import gemm_tc, gemm_tc_with_tile
            self.tc_tiles = (64, 128) + ((256,) if dlcore._C.cuda.gemm_wgmma_available(0) else ())
        self.gemm_tc, self.gemm_tc_with_tile = gemm_tc, gemm_tc_with_tile
        import torch

        self.torch = torch


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header(mods, args):
    d, t = mods.dlcore, mods.torch
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, dlcore commit {commit()}, "
          f"device {d.cuda.get_device_name()}, torch {t.__version__} ({t.cuda.get_device_name()})")
    print(f"# layout {args.layout}: op(A) = A{'.T' if args.layout[0] == 'T' else ''}, "
          f"op(B) = B{'.T' if args.layout[1] == 'T' else ''}")
    print(f"# CUDA events, median of {args.repeats} samples of >= {TARGET_MS:.0f} ms; inputs standard-normal, "
          f"rotated over up to {MAX_SETS} sets when they fit in 2 x {L2_BYTES >> 20} MB of L2")
    print(f"# DLCORE_GEMM_CP_ASYNC={os.environ.get('DLCORE_GEMM_CP_ASYNC', '')!r} (1: gemm's cp.async rule on "
          f"even where kCpAsyncVerified is false)")


def host_sets_for(rng, M, N, K, layout="NN"):
    """Input sets as stored: A (M, K), or (K, M) when layout[0] is "T"; B (K, N), or (N, K)."""
    a_shape = (K, M) if layout[0] == "T" else (M, K)
    b_shape = (N, K) if layout[1] == "T" else (K, N)
    return [(rng.standard_normal(a_shape, dtype=np.float32), rng.standard_normal(b_shape, dtype=np.float32))
            for _ in range(input_sets(M, N, K))]


def as_layout(a, b, layout):
    """The operands of C = op(A) @ op(B) as views: a stored transpose is used through .T."""
    return (a.T if layout[0] == "T" else a), (b.T if layout[1] == "T" else b)


def shape_setup(mods, rng, name, layout):
    """((M, N, K), dlcore calls, torch calls, flops) for one row: fresh input sets on the device."""
    M, N, K = SHAPES[name]
    host = host_sets_for(rng, M, N, K, layout)
    return (M, N, K), Dlcore(mods, host, layout), Torch(mods.torch, host, layout), 2.0 * M * N * K


def goals_table(mods, args):
    precisions = [p for p in args.precisions if p == "fp32" or mods.gemm_tc is not None]
    skipped = [p for p in args.precisions if p not in precisions]
    if skipped:
        print(f"# {', '.join(skipped)}: skipped (dlcore.cuda.kernels.gemm_tc is not built)")
    rng = np.random.default_rng(0)
    print("| shape | M x N x K | precision | dlcore kernel | dlcore TFLOP/s | cuBLAS TFLOP/s | ratio | goal | |")
    print("|---|---|---|---|---|---|---|---|---|")
    misses = 0
    for name in args.shapes:
        (M, N, K), dl, th, flop = shape_setup(mods, rng, name, args.layout)
        for precision in precisions:
            t_d = time_calls(dl.calls(precision), dl.event, dl.sync, args.repeats)
            t_t = time_calls(th.calls(precision), th.event, th.sync, args.repeats)
            ratio = t_t / t_d
            g = goal(name, precision)
            verdict = "-" if g is None else ("PASS" if ratio >= g else "MISS")
            misses += verdict == "MISS"
            kernel = "gemm_tc " + precision
            if precision == "fp32":
                kname, splits = mods.choice(M, N, K)
                kernel = kname + (f" split {splits}" if splits > 1 else "")
            print(f"| {name} | {M}x{N}x{K} | {precision} | {kernel} | {flop / t_d / 1e9:.1f} | "
                  f"{flop / t_t / 1e9:.1f} | {ratio:.2f} | {'' if g is None else f'>= {g:.2f}'} | {verdict} |",
                  flush=True)
    print(f"# {misses} row(s) miss their goal")


def variant_table(mods, args):
    """Every float32 kernel forced, the cp.async ones at several split counts."""
    kernels = [(name, split_k) for name, (tile, f64, split_k) in mods.variants().items()]
    rng = np.random.default_rng(0)
    print("| shape | M x N x K | kernel | splits | ms | TFLOP/s | cuBLAS FP32 TFLOP/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.shapes:
        (M, N, K), dl, th, flop = shape_setup(mods, rng, name, args.layout)
        t_t = time_calls(th.calls("fp32"), th.event, th.sync, args.repeats)
        for kernel, split_k in kernels:
            # splits 0 = the rule's count; forced counts whose scratch would pass 1 GiB are skipped
            tried = (0, 1) + tuple(s for s in args.splits if s * M * N * 4 <= 2**30) if split_k else (0,)
            for splits in tried:
                t_d = time_calls(dl.calls(kernel=kernel, splits=splits), dl.event, dl.sync, args.repeats)
                label = "rule" if split_k and splits == 0 else str(splits) if split_k else "-"
                print(f"| {name} | {M}x{N}x{K} | {kernel} | {label} | {t_d:.4f} | {flop / t_d / 1e9:.1f} | "
                      f"{flop / t_t / 1e9:.1f} | {t_t / t_d:.2f} |", flush=True)


def tc_variant_table(mods, args):
    """Every tensor-core tile forced (gemm_tc_with_tile), beside cuBLAS at the same precision."""
    precisions = [p for p in args.precisions if p != "fp32"]
    if mods.gemm_tc is None or not precisions:
        print("# --tc-variant: nothing to time (gemm_tc not built, or no tf32/bf16 in --precisions)")
        return
    rng = np.random.default_rng(0)
    tiles = [t for t in mods.tc_tiles if not args.tc_tiles or t in args.tc_tiles]
    print(f"# gemm_tc tiles: {', '.join(map(str, tiles))} (256 = wgmma 128 x 256)")
    print("| shape | M x N x K | precision | tile | ms | TFLOP/s | cuBLAS TFLOP/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.shapes:
        (M, N, K), dl, th, flop = shape_setup(mods, rng, name, args.layout)
        for precision in precisions:
            t_t = time_calls(th.calls(precision), th.event, th.sync, args.repeats)
            for tile in tiles:
                t_d = time_calls(dl.calls(precision, tc_tile=tile), dl.event, dl.sync, args.repeats)
                print(f"| {name} | {M}x{N}x{K} | {precision} | {tile} | {t_d:.4f} | {flop / t_d / 1e9:.1f} | "
                      f"{flop / t_t / 1e9:.1f} | {t_t / t_d:.2f} |", flush=True)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="store_true", help="time every float32 kernel forced (sets the rule)")
    ap.add_argument("--tc-variant", action="store_true", help="time every tensor-core tile forced (sets its rule)")
    ap.add_argument("--tc-tiles", default="", help="--tc-variant: comma list of tiles to time (default: all built)")
    ap.add_argument("--layout", default="NN", choices=["NN", "NT", "TN", "TT"],
                    help="operands stored transposed (T) and passed as .T views, for both libraries")
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"comma list of {', '.join(SHAPES)}")
    ap.add_argument("--precisions", default=",".join(PRECISIONS), help="comma list of fp32, tf32, bf16")
    ap.add_argument("--splits", default="2,4,8,16", help="--variant: split counts tried besides 1 and the rule's")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    args.shapes = [s for s in args.shapes.split(",") if s]
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.splits = [int(s) for s in args.splits.split(",") if s]
    args.tc_tiles = [int(t) for t in args.tc_tiles.split(",") if t]
    for s in args.shapes:
        if s not in SHAPES:
            ap.error(f"unknown shape {s!r}; choose from {', '.join(SHAPES)}")
    for p in args.precisions:
        if p not in PRECISIONS:
            ap.error(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    return args


def main(argv=None, mods=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    mods = mods or Modules()
    if not mods.dlcore.cuda.is_available():
        print("bench_cuda_gemm: no CUDA device (dlcore.cuda.is_available() is False)", file=sys.stderr)
        return 2
    header(mods, args)
    if args.variant:
        variant_table(mods, args)
    elif args.tc_variant:
        tc_variant_table(mods, args)
    else:
        goals_table(mods, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
