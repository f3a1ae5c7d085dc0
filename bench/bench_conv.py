"""conv2d and 2x2 pooling, float32 NCHW: dlcore vs PyTorch (its faster of NCHW and channels_last)
side by side, forward and forward + backward, on 1 and 2 threads (issue 4's "Speed" table).

    DLCORE_DEV_BUILD=/tmp/build PYTHONPATH=python python bench/bench_conv.py \
        [--threads 1,2] [--cases lenet_c1,...,maxpool,avgpool] [--directions fwd,fwd+bwd] \
        [--repeat 5] [--quick]

Cases, conv as (N, C, HxW, C_out, kernel, pad), stride 1, with bias: lenet_c1 (64, 1, 32x32, 6,
5, 0), lenet_c3 (64, 6, 14x14, 16, 5, 0), lenet_c1_b256 (256, 1, 32x32, 6, 5, 0), conv3x3_56
(32, 64, 56x56, 64, 3, 1), conv3x3_28 (32, 128, 28x28, 128, 3, 1), conv1x1_28 (32, 256, 28x28,
64, 1, 0); pooling maxpool and avgpool, 2x2 stride 2, on (32, 64, 56x56).

Floor (napkin math). Conv: 2*N*C_out*OH*OW*C*KH*KW FLOP per direction; forward + backward
(grad of input, weight and bias) counts 3x the forward (the bias sum is O(N*C_out*OH*OW) and
left out). E.g. conv3x3_56 (and conv3x3_28): 7.40 GFLOP forward, 22.2 forward + backward, so
>= 63 ms and >= 189 ms at the ~117 GFLOP/s one-core FMA peak here (bench/peak_probe.py);
lenet_c1: 0.015 GFLOP forward, 0.045 forward + backward, >= 0.13 ms and >= 0.39 ms. Pooling
moves far more bytes than it computes: forward reads x and writes y, 4*(N*C*H*W + N*C*OH*OW)
bytes; backward reads grad_y and writes grad_x, the same again, so forward + backward counts 2x.
Indices (max pooling's argmax, written by dlcore in every forward and by torch when grad is on)
are not counted: the bytes are the same for both libraries. 32 x 64 x 56 x 56: 25.7 MB in, 6.4
MB out, 32.1 MB forward, i.e. about the 32 MiB L3 here, so the data may partly stay in L3
between calls; the bandwidth it is compared with is DRAM's.

The memory bandwidth for the pooling % column is measured here, at the start of each run: a
NumPy copy of a 256 MiB float32 array (8x the L3), split over `threads` Python threads (np.copyto
releases the GIL), best of 20 (single tries of the two-thread copy varied 28-42 GB/s on this
VM), counting bytes read + written (2 x 256 MiB). bench/peak_probe.py's STREAM copy is printed
beside it for reference; the goal uses the NumPy number.

Columns: case; thr (threads); dir (fwd: forward under no_grad; fwd+bwd: input, weight and bias
require grad, y = f(x), y.backward(G) for a fixed random G, gradients cleared before each call);
floor ms (FLOP / FMA peak, or bytes / bandwidth, at that thread count); dlcore ms, torch NCHW ms,
torch CL ms (median (min) per call over --repeat samples after 2 warm-up calls; CL = x, weight and
G in torch.channels_last, converted once outside the timed call); base (the faster torch layout,
the baseline); dlcore GF/s or GB/s; base GF/s or GB/s; dlcore % peak (of the FMA peak for conv,
of the NumPy-copy bandwidth for pooling); torch/dlcore (baseline time / dlcore time, > 1: dlcore
faster); goal and met; busy % (the most of the CPUs other processes used while one of the row's
three children ran: above ~10 % the row's times are skewed). Goals (issue 4): conv >= 1.0x the
baseline at every shape; on the LeNet shapes (lenet_c1, lenet_c3 and lenet_c1_b256, LeNet's conv1
at batch 256) 1.5x the baseline, or 90 % of peak where 1.5x would exceed it. Pooling >= 1.0x the
baseline and >= 70 % of the bandwidth (both). A full run takes about 3 minutes on a quiet
machine (48 child processes).

Each library (and each torch layout) runs in its own child process per (case, threads), back to
back: dlcore, torch NCHW, torch channels_last (GNU OpenMP in dlcore and torch's threads spin
against each other on two cores; see _sidebyside.py). Before each child the parent waits for a
quiet machine, and it reports the share of the CPUs other processes used while the child ran.
Before timing, the dlcore child checks its forward output and (fwd+bwd) every gradient against
torch in float64 on the same float32 inputs and exits non-zero if any element is off by more than
float32 rounding allows: conv, 2*(K+1)*2^-24 * (|x| * |w| + |b|) elementwise with K the
reduction length (C*KH*KW for y, C_out*KH*KW for grad_x, N*OH*OW for grad_w and grad_b) and the
bracket the same conv over absolute values; max pooling, forward bitwise equal; avg pooling and
max pooling's backward, 1e-6 + 1e-5*|ref|. The worst |err|/tol per case is printed under the
table. Without torch the script stops: the baseline and the check need it.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _sidebyside import torch_available, wait_until_idle
from bench_rnn import (
    add_common_args,
    foreign_warning,
    header,
    resolve_common_args,
    run_pair,
    time_call,
)

# name -> (N, C, H, W, C_out, K, pad): stride 1, dilation 1, groups 1, with bias
CONV = {
    "lenet_c1": (64, 1, 32, 32, 6, 5, 0),
    "lenet_c3": (64, 6, 14, 14, 16, 5, 0),
    "lenet_c1_b256": (256, 1, 32, 32, 6, 5, 0),
    "conv3x3_56": (32, 64, 56, 56, 64, 3, 1),
    "conv3x3_28": (32, 128, 28, 28, 128, 3, 1),
    "conv1x1_28": (32, 256, 28, 28, 64, 1, 0),
}
LENET = ("lenet_c1", "lenet_c3", "lenet_c1_b256")
# name -> (mode, N, C, H, W): 2x2 windows, stride 2, no padding
POOL = {
    "maxpool": ("max", 32, 64, 56, 56),
    "avgpool": ("avg", 32, 64, 56, 56),
}
CASES = list(CONV) + list(POOL)
DIRECTIONS = ("fwd", "fwd+bwd")
POOL_K = 2
U = 2.0 ** -24                   # float32 unit roundoff
POOL_ATOL, POOL_RTOL = 1e-6, 1e-5
GOAL_SPEEDUP, GOAL_LENET_SPEEDUP, GOAL_PEAK = 1.0, 1.5, 0.90
GOAL_POOL_SPEEDUP, GOAL_POOL_BW = 1.0, 0.70
COPY_MIB = 256


def out_hw(case):
    if case in CONV:
        _, _, H, W, _, K, pad = CONV[case]
        return H + 2 * pad - K + 1, W + 2 * pad - K + 1
    _, _, _, H, W = POOL[case]
    return (H - POOL_K) // POOL_K + 1, (W - POOL_K) // POOL_K + 1


def work(case, direction):
    """FLOP (conv) or bytes (pool) of one call."""
    OH, OW = out_hw(case)
    if case in CONV:
        N, C, _, _, C_out, K, _ = CONV[case]
        forward = 2.0 * N * C_out * OH * OW * C * K * K
    else:
        _, N, C, H, W = POOL[case]
        forward = 4.0 * (N * C * H * W + N * C * OH * OW)
    return forward if direction == "fwd" else (3.0 if case in CONV else 2.0) * forward


def label(case):
    if case in CONV:
        N, C, H, W, C_out, K, pad = CONV[case]
        return f"{case} ({N}, {C}, {H}x{W}, {C_out}, {K}, {pad})"
    _, N, C, H, W = POOL[case]
    return f"{case} ({N}, {C}, {H}x{W}) 2x2/2"


# ---------------------------------------------------------------- parent: inputs and references
def make_case(case, path):
    """Writes the float32 inputs and torch's float64 results with their tolerances to `path`."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    OH, OW = out_hw(case)
    f64 = torch.float64
    data = {}
    if case in CONV:
        N, C, H, W, C_out, K, pad = CONV[case]
        bound = 1.0 / np.sqrt(C * K * K)  # torch's default init range
        data["x"] = rng.standard_normal((N, C, H, W), dtype=np.float32)
        data["w"] = rng.uniform(-bound, bound, (C_out, C, K, K)).astype(np.float32)
        data["b"] = rng.uniform(-bound, bound, (C_out,)).astype(np.float32)
        data["grad_y"] = rng.standard_normal((N, C_out, OH, OW), dtype=np.float32)
        x, w, b, g = (torch.from_numpy(data[k]).to(f64) for k in ("x", "w", "b", "grad_y"))
        x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
        y = F.conv2d(x, w, b, padding=pad)
        y.backward(g)
        ax, aw, ag = x.detach().abs(), w.detach().abs(), g.abs()
        with torch.no_grad():
            mags = {  # name -> (|x| * |w|-style bound of the sum, reduction length)
                "y": (F.conv2d(ax, aw, b.detach().abs(), padding=pad), C * K * K),
                "grad_x": (torch.nn.grad.conv2d_input(ax.shape, aw, ag, padding=pad), C_out * K * K),
                "grad_w": (torch.nn.grad.conv2d_weight(ax, aw.shape, ag, padding=pad), N * OH * OW),
                "grad_b": (ag.sum(dim=(0, 2, 3)), N * OH * OW),
            }
        refs = {"y": y.detach(), "grad_x": x.grad, "grad_w": w.grad, "grad_b": b.grad}
        for name, (mag, k) in mags.items():
            data["ref_" + name] = refs[name].numpy()
            data["tol_" + name] = (2.0 * (k + 1) * U * mag.numpy()).astype(np.float32)
    else:
        mode, N, C, H, W = POOL[case]
        data["x"] = rng.standard_normal((N, C, H, W), dtype=np.float32)
        data["grad_y"] = rng.standard_normal((N, C, OH, OW), dtype=np.float32)
        x, g = (torch.from_numpy(data[k]).to(f64) for k in ("x", "grad_y"))
        x.requires_grad_()
        pool = F.max_pool2d if mode == "max" else F.avg_pool2d
        y = pool(x, POOL_K, POOL_K)
        y.backward(g)
        for name, ref in (("y", y.detach()), ("grad_x", x.grad)):
            ref = ref.numpy()
            data["ref_" + name] = ref
            exact = mode == "max" and name == "y"
            tol = np.zeros_like(ref) if exact else POOL_ATOL + POOL_RTOL * np.abs(ref)
            data["tol_" + name] = tol.astype(np.float32)
    np.savez(path, **data)


def numpy_copy_gbs(threads, rounds=20):
    """Best GB/s (bytes read + written) of copying a COPY_MIB MiB float32 array with NumPy, the
    copy split into `threads` contiguous parts each copied by its own Python thread."""
    n = COPY_MIB * 2 ** 20 // 4
    src = np.random.default_rng(1).standard_normal(n, dtype=np.float32)
    dst = np.empty_like(src)
    dst.fill(0.0)  # touch every page before timing
    bounds = np.linspace(0, n, threads + 1).astype(int)
    best = float("inf")
    for _ in range(rounds):
        workers = [threading.Thread(target=np.copyto, args=(dst[lo:hi], src[lo:hi]))
                   for lo, hi in zip(bounds[:-1], bounds[1:])]
        start = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        best = min(best, time.perf_counter() - start)
    if not np.array_equal(dst, src):
        raise SystemExit("bench_conv: the NumPy bandwidth copy came out wrong")
    return 2.0 * src.nbytes / best / 1e9


# ---------------------------------------------------------------- child side: one library, one layout
def check(case, name, got, data):
    """Worst |got - ref| / tol of one result; raises SystemExit when it exceeds 1."""
    ref, tol = data["ref_" + name], data["tol_" + name].astype(np.float64)
    err = np.abs(got.astype(np.float64) - ref)
    ratio = np.where(tol > 0, err / np.where(tol > 0, tol, 1.0), np.where(err > 0, np.inf, 0.0))
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if not ratio[worst] <= 1.0:
        raise SystemExit(f"bench_conv: dlcore {name} of {label(case)} differs from torch (float64): at index "
                         f"{tuple(int(i) for i in worst)} got {float(got[worst])!r}, torch {float(ref[worst])!r}, |err| "
                         f"{err[worst]:.3g} > tol {tol[worst]:.3g}; not timing wrong results")
    return float(ratio[worst])


def runs(lib, layout, case, data):
    """({direction: fn}, first(direction) -> {name: numpy result}) over lib's functional API."""
    if lib == "dlcore":
        import dlcore as m
        import dlcore.nn.functional as F

        def tensor(a, grad=False):
            t = m.from_numpy(np.ascontiguousarray(a))
            return t.requires_grad_() if grad else t
    else:
        import torch as m
        import torch.nn.functional as F

        fmt = torch_layout(layout)

        def tensor(a, grad=False):
            t = m.from_numpy(np.ascontiguousarray(a))
            if t.ndim == 4:
                t = t.contiguous(memory_format=fmt)
            return t.requires_grad_() if grad else t

    x, g = tensor(data["x"], True), tensor(data["grad_y"])
    if case in CONV:
        pad = CONV[case][6]
        w, b = tensor(data["w"], True), tensor(data["b"], True)
        leaves = {"grad_x": x, "grad_w": w, "grad_b": b}

        def f():
            return F.conv2d(x, w, b, padding=pad)
    else:
        leaves = {"grad_x": x}
        pool = F.max_pool2d if POOL[case][0] == "max" else F.avg_pool2d

        def f():
            return pool(x, POOL_K, POOL_K)

    def fwd():
        with m.no_grad():
            return f()

    def fwd_bwd():
        for t in leaves.values():
            t.grad = None
        y = f()
        y.backward(g)
        return y

    def first(direction):
        if direction == "fwd":
            return {"y": fwd().numpy()}
        y = fwd_bwd()
        return {"y": y.detach().numpy(), **{k: t.grad.numpy() for k, t in leaves.items()}}

    return {"fwd": fwd, "fwd+bwd": fwd_bwd}, first


def torch_layout(layout):
    import torch

    return torch.channels_last if layout == "channels_last" else torch.contiguous_format


def child(lib, layout, threads, case, case_path, directions, repeat, sample_s):
    if lib == "dlcore":
        import dlcore as module
    else:
        import torch as module
    module.set_num_threads(threads)
    data = np.load(case_path)
    fns, first = runs(lib, layout, case, data)
    rows = {"check": {}}
    for d in directions:
        if lib == "dlcore":  # the baseline is the reference; only dlcore is checked
            for name, got in first(d).items():
                rows["check"][name] = max(rows["check"].get(name, 0.0), check(case, name, got, data))
        rows[d] = time_call(fns[d], repeat, sample_s)
    return rows


# ---------------------------------------------------------------- parent side: the table
def goal(case, base_rate, peak_rate):
    """(rate dlcore must reach, label), rate in GFLOP/s (conv) or GB/s (pool)."""
    if case in POOL:
        target = max(GOAL_POOL_SPEEDUP * base_rate, GOAL_POOL_BW * peak_rate)
        return target, f">= {GOAL_POOL_SPEEDUP}x & {100 * GOAL_POOL_BW:.0f} % bw"
    if case in LENET:
        if GOAL_LENET_SPEEDUP * base_rate > GOAL_PEAK * peak_rate:
            return GOAL_PEAK * peak_rate, f"{100 * GOAL_PEAK:.0f} % peak"
        return GOAL_LENET_SPEEDUP * base_rate, f"{GOAL_LENET_SPEEDUP}x"
    return GOAL_SPEEDUP * base_rate, f"{GOAL_SPEEDUP}x"


def ms(pair):
    med, low = pair
    return f"{1e3 * med:.3g} ({1e3 * low:.3g})" if med < 0.1 else f"{1e3 * med:.1f} ({1e3 * low:.1f})"


def table(cases, args, results, fma, bw):
    unit = "GB/s" if cases[0] in POOL else "GF/s"
    head = ["case (N, C, HxW, C_out, k, pad)" if unit == "GF/s" else "case (N, C, HxW)", "thr", "dir", "floor ms",
            "dlcore ms", "torch NCHW ms", "torch CL ms", "base", f"dlcore {unit}", f"base {unit}",
            "dlcore % peak" if unit == "GF/s" else "dlcore % bw", "torch/dlcore", "goal", "met", "busy %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in cases:
        for t in args.threads:
            peak = fma[t] if case in CONV else bw[t]
            r = results[case, t]
            for d in args.directions:
                dl, nchw, cl = r["dlcore"]["rows"][d], r["torch"]["rows"][d], r["torch_cl"]["rows"][d]
                base_name, base = ("NCHW", nchw) if nchw[0] <= cl[0] else ("CL", cl)
                rate, base_rate = work(case, d) / dl[0] / 1e9, work(case, d) / base[0] / 1e9
                target, goal_label = goal(case, base_rate, peak)
                cells = [label(case), str(t), d, f"{1e3 * work(case, d) / (peak * 1e9):.3g}", ms(dl), ms(nchw), ms(cl),
                         base_name, f"{rate:.1f}", f"{base_rate:.1f}", f"{100 * rate / peak:.0f} %",
                         f"{base[0] / dl[0]:.2f}", f"{goal_label} ({target:.1f})",
                         "met" if rate >= target else "missed"]
                busy = [c["foreign"] for c in r.values() if "foreign" in c]
                cells.append(f"{100 * max(busy):.0f}" if busy else "-")
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--directions", default=",".join(DIRECTIONS), help="fwd, fwd+bwd or both")
    parser.add_argument("--layout", default="nchw", choices=("nchw", "channels_last"), help=argparse.SUPPRESS)
    add_common_args(parser, sample_s=0.2)
    args = parser.parse_args()
    resolve_common_args(args, sample_s=0.2)
    args.directions = args.directions.split(",")
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES] + [d for d in args.directions if d not in DIRECTIONS]
    if unknown:
        raise SystemExit(f"bench_conv: unknown cases or directions {unknown}; cases: {', '.join(CASES)}; "
                         f"directions: {', '.join(DIRECTIONS)}")
    if args.only:
        rows = child(args.only, args.layout, args.threads, cases[0], args.case, args.directions, args.repeat,
                     args.sample)
        print(json.dumps(rows))
        return
    if not torch_available():
        raise SystemExit("bench_conv: needs PyTorch (pip install torch==2.13.0) for the baseline and the check")

    import peak_probe

    probe = peak_probe.load_or_measure(sorted(set(args.threads) | {1}))
    fma = {t: peak_probe.fma_peak(probe, t)[1] for t in args.threads}
    bw = {}
    for t in args.threads:
        wait_until_idle(args.wait_idle)
        bw[t] = numpy_copy_gbs(t)
    script = os.path.abspath(__file__)
    results = {}  # (case, threads) -> {"dlcore" | "torch" | "torch_cl": child result}
    with tempfile.TemporaryDirectory(prefix="bench_conv-") as tmp:
        for case in cases:
            case_path = os.path.join(tmp, f"{case}.npz")
            make_case(case, case_path)
            argv = ["--cases", case, "--case", case_path, "--directions", ",".join(args.directions),
                    "--repeat", str(args.repeat), "--sample", str(args.sample)]
            for t in args.threads:
                pair = run_pair(script, ["dlcore", "torch"], t, argv, args)
                pair["torch_cl"] = run_pair(script, ["torch"], t, argv + ["--layout", "channels_last"], args)["torch"]
                results[case, t] = pair
            os.remove(case_path)
    note = ("dlcore's outputs and gradients checked against torch float64 on the same inputs (see the doc string); "
            "torch ms NCHW and channels_last (CL), base = the faster")
    print("\n".join(header("conv2d / 2x2 pooling, float32", args, probe, note)))
    for t in args.threads:
        stream = probe["per_thread"][str(t)]["copy_gbs"]
        print(f"# bandwidth {t} thr: {bw[t]:.1f} GB/s NumPy copy of {COPY_MIB} MiB, read + written, best of 20, "
              f"measured in this run (peak_probe STREAM copy: {stream:.1f} GB/s)")
    warning = foreign_warning(results.values())
    if warning:
        print(warning)
    foreign = [r.get("foreign", 0.0) for pair in results.values() for r in pair.values()]
    print(f"# other processes' share of the CPUs while a child ran: median {100 * statistics.median(foreign):.0f} %, "
          f"max {100 * max(foreign):.0f} %")
    for group in ([c for c in cases if c in CONV], [c for c in cases if c in POOL]):
        if group:
            print()
            print("\n".join(table(group, args, results, fma, bw)))
    print()
    for case in cases:
        checks = results[case, args.threads[0]]["dlcore"]["rows"]["check"]
        print(f"# check {case}: worst |err|/tol " + ", ".join(f"{k} {v:.2g}" for k, v in checks.items()))


if __name__ == "__main__":
    main()
