"""Per-op cost of the Python layer: tiny ops where the framework, not the math, is the cost
(small models and RNN steps live here). dlcore vs PyTorch side by side in one run.

    python bench/bench_overhead.py [--repeat 7] [--number 2000]

Prints, per case, the median over `repeat` runs of the mean time per call (us) for dlcore and
PyTorch (each timed in its own process, see _sidebyside.py) and their ratio (dlcore / torch:
below 1 means dlcore is cheaper).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import dlcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sidebyside import run_child, torch_available  # noqa: E402


def per_call_us(fn, number, repeat):
    fn()  # warm up
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number * 1e6)
    return float(np.median(runs)), float(np.min(runs))


def cases(lib):
    """name -> callable for a library exposing tensor/matmul/backward like torch."""
    if lib == "dlcore":
        a1 = dlcore.tensor([1.5], requires_grad=True)
        b1 = dlcore.tensor([2.5], requires_grad=True)
        a8 = dlcore.randn(8, 8, requires_grad=True)
        b8 = dlcore.randn(8, 8, requires_grad=True)
        no_grad = dlcore.no_grad
    else:
        import torch

        a1 = torch.tensor([1.5], requires_grad=True)
        b1 = torch.tensor([2.5], requires_grad=True)
        a8 = torch.randn(8, 8, requires_grad=True)
        b8 = torch.randn(8, 8, requires_grad=True)
        no_grad = torch.no_grad

    def add_forward_nograd():
        with no_grad():
            return a1 + b1

    def add_forward():
        return a1 + b1

    def add_forward_backward():
        (a1 + b1).sum().backward()

    def matmul_forward():
        return a8 @ b8

    def matmul_forward_backward():
        (a8 @ b8).sum().backward()

    return {
        "add 1-elem fwd (no_grad)": add_forward_nograd,
        "add 1-elem fwd (grad)": add_forward,
        "add 1-elem fwd+bwd": add_forward_backward,
        "matmul 8x8 fwd (grad)": matmul_forward,
        "matmul 8x8 fwd+bwd": matmul_forward_backward,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--only", choices=["dlcore", "torch"], help="(internal) time one library in this process")
    args = parser.parse_args()
    if args.only:
        if args.only == "torch":
            import torch

            torch.set_num_threads(dlcore.get_num_threads())
        times = {name: per_call_us(fn, args.number, args.repeat) for name, fn in cases(args.only).items()}
        print(json.dumps(times))
        return
    argv = ["--repeat", str(args.repeat), "--number", str(args.number)]
    ours = run_child(__file__, "dlcore", argv)
    theirs = run_child(__file__, "torch", argv) if torch_available() else None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# per-op overhead | {platform.machine()} | dlcore {dlcore.__version__} isa {dlcore.cpu_isa()} | "
          f"threads {dlcore.get_num_threads()} | commit {commit} | each library in its own process")
    print(f"{'case':28s} {'dlcore us (median/min)':>24s} {'torch us (median/min)':>24s} {'ratio':>7s}")
    for name, (med, low) in ours.items():
        if theirs:
            tmed, tlow = theirs[name]
            print(f"{name:28s} {med:11.2f} / {low:8.2f} {tmed:13.2f} / {tlow:8.2f} {med / tmed:7.2f}")
        else:
            print(f"{name:28s} {med:11.2f} / {low:8.2f} {'(torch not installed)':>24s}")


if __name__ == "__main__":
    main()
