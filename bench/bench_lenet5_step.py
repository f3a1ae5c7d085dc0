"""One LeNet-5 training step (forward, backward, Adam update) on a batch of MNIST-shaped
images: dlcore vs PyTorch side by side in one run, same model, batch and threads.

    python bench/bench_lenet5_step.py [--batch 64] [--steps 50] [--repeat 5]

Floor: a LeNet-5 step on batch 64 is ~0.16 GFLOP (forward ~0.8 MFLOP/image: conv1 0.24, conv2
0.48, fc 0.12; backward about twice that); at the ~200 GFLOP/s two-core FMA peak that is under
1 ms, so at this size the step is bound by memory traffic and per-op overhead, not flops.
Prints the median and min time per step and the ratio dlcore / torch (below 1: dlcore faster).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sidebyside import run_child, torch_available  # noqa: E402


def time_steps(step, steps, repeat):
    step()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        runs.append((time.perf_counter() - start) / steps * 1e3)
    return float(np.median(runs)), float(np.min(runs))


def dlcore_step(images, labels):
    import dlcore
    from dlcore import optim
    from dlcore.examples.lenet5 import LeNet5

    model = LeNet5()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = dlcore.from_numpy(images), dlcore.from_numpy(labels)

    def step():
        loss = dlcore.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_step(images, labels):
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["dlcore", "torch"], help="(internal) time one library in this process")
    args = parser.parse_args()
    if args.only:
        rng = np.random.default_rng(0)
        images = rng.standard_normal((args.batch, 1, 28, 28)).astype(np.float32)
        labels = rng.integers(0, 10, args.batch).astype(np.int64)
        import dlcore

        if args.only == "torch":
            import torch

            torch.set_num_threads(dlcore.get_num_threads())
        make = dlcore_step if args.only == "dlcore" else torch_step
        med, low = time_steps(make(images, labels), args.steps, args.repeat)
        print(json.dumps({"median_ms": med, "min_ms": low}))
        return
    import dlcore

    argv = ["--batch", str(args.batch), "--steps", str(args.steps), "--repeat", str(args.repeat)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# LeNet-5 train step, batch {args.batch} | {platform.machine()} | dlcore {dlcore.__version__} "
          f"isa {dlcore.cpu_isa()} | threads {dlcore.get_num_threads()} | commit {commit}")
    ours = run_child(__file__, "dlcore", argv)
    line = f"dlcore {ours['median_ms']:7.2f} ms (min {ours['min_ms']:6.2f})"
    if torch_available():
        theirs = run_child(__file__, "torch", argv)
        line += (f" | torch {theirs['median_ms']:7.2f} ms (min {theirs['min_ms']:6.2f})"
                 f" | ratio {ours['median_ms'] / theirs['median_ms']:5.2f}")
    print(line)


if __name__ == "__main__":
    main()
