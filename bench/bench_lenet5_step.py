"""One LeNet-5 training step (forward, backward, SGD with momentum): dlcore vs PyTorch side by
side, same network, weights, batch and threads, at batch 64 and 256 on 1 and 2 threads.

    DLCORE_DEV_BUILD=/tmp/build PYTHONPATH=python python bench/bench_lenet5_step.py \
        [--batches 64,256] [--threads 1,2] [--repeat 5] [--quick]

Model: dlcore.examples.lenet5.LeNet5 (conv 1->6 5x5 pad 2, ReLU, max-pool 2, conv 6->16 5x5,
ReLU, max-pool 2, Linear 400->120->84->10 with ReLUs) and the same layers in torch.nn, under
the same parameter names. Loss: mean cross-entropy; optimizer SGD(lr 0.01, momentum 0.9).
Inputs: a fixed batch of MNIST-shaped (N, 1, 28, 28) standard-normal images and random labels.

Floor (napkin math): forward ~0.83 MFLOP/image (conv1 0.235, conv2 0.48, fc 0.118); backward
needs no input gradient for conv1, so a step is ~2.2 MFLOP/image: ~0.14 GFLOP at batch 64,
~1.2 ms at the one-core FMA peak (117 GFLOP/s here). Pooling, ReLU, the loss and the update
move a few MB: at this size a step is bound by per-op overhead and memory traffic as much as
by flops.

Columns: batch, thr; dlcore ms and torch ms (median (min) per step over --repeat samples after
2 warm-up steps); images/s of each (batch / median); torch/dlcore (> 1: dlcore faster); the
goal (issue 4: 1.5x torch's images/s) and whether dlcore meets it.

Each library runs in its own child process per (batch, threads), back to back (see
_sidebyside.py). The weights are torch's initialisation, copied into dlcore; before timing, the
dlcore child checks its first three step losses (the 2nd and 3rd after SGD updates) against
torch's (|diff| < 1e-4) and fails the run if they differ. Without torch it times dlcore alone.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _sidebyside import torch_available
from bench_rnn import (add_common_args, foreign_warning, header, resolve_common_args, run_pair,
                       torch_reference, training_step, train_step_child)

LR, MOMENTUM = 0.01, 0.9
LOSS_TOL = 1e-4
CHECK_STEPS = 3
GOAL_SPEEDUP = 1.5
PARAMS = ("features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
          "classifier.1.weight", "classifier.1.bias", "classifier.3.weight", "classifier.3.bias",
          "classifier.5.weight", "classifier.5.bias")


# ---------------------------------------------------------------- the case both children run
def make_case(batch, path):
    """Writes the batch (and, with torch, its weights and first losses) to `path` (.npz)."""
    rng = np.random.default_rng(0)
    case = {"images": rng.standard_normal((batch, 1, 28, 28)).astype(np.float32),
            "labels": rng.integers(0, 10, batch).astype(np.int64)}
    if torch_available():
        torch_reference(case, torch_model, CHECK_STEPS)
    np.savez(path, **case)


# ---------------------------------------------------------------- child side: one library
def dlcore_model(case):
    """(model, step): dlcore's LeNet-5 (at the case's weights when it has them) and one SGD step -> loss."""
    import dlcore
    from dlcore.examples.lenet5 import LeNet5

    model = LeNet5()
    if PARAMS[0] in case:
        model.load_state_dict({k: dlcore.from_numpy(case[k].copy()) for k in PARAMS})
    opt = dlcore.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = dlcore.from_numpy(case["images"]), dlcore.from_numpy(case["labels"])
    return model, training_step(model, opt, dlcore.cross_entropy, x, y)


def torch_model(case):
    """(model, step): the same network in torch.nn, same parameter names."""
    import torch
    from torch import nn

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

        def forward(self, x):
            return self.classifier(self.features(x))

    model = LeNet5()
    if PARAMS[0] in case:  # else (make_case) keep torch's initialisation
        model.load_state_dict({k: torch.from_numpy(case[k].copy()) for k in PARAMS})
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = torch.from_numpy(case["images"]), torch.from_numpy(case["labels"])
    return model, training_step(model, opt, nn.functional.cross_entropy, x, y)


def child(lib, threads, case_path, repeat, sample_s):
    return train_step_child("bench_lenet5_step", lib, threads, dict(np.load(case_path)), (dlcore_model, torch_model), repeat,
                            sample_s, LOSS_TOL)


# ---------------------------------------------------------------- parent side: the table
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="64,256", help="comma-separated batch sizes")
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)  # a child's batch
    add_common_args(parser, sample_s=0.3)
    args = parser.parse_args()
    resolve_common_args(args, sample_s=0.3)
    if args.only:
        print(json.dumps(child(args.only, args.threads, args.case, args.repeat, args.sample)))
        return

    import peak_probe

    peak = peak_probe.load_or_measure(sorted(set(args.threads) | {1}))
    batches = [int(b) for b in args.batches.split(",")]
    libs = ["dlcore", "torch"] if torch_available() else ["dlcore"]
    results = {}  # (batch, threads) -> {lib: child result}
    with tempfile.TemporaryDirectory(prefix="bench_lenet5-") as tmp:
        for batch in batches:
            case_path = os.path.join(tmp, f"case{batch}.npz")
            make_case(batch, case_path)
            argv = ["--case", case_path, "--repeat", str(args.repeat), "--sample", str(args.sample)]
            for t in args.threads:
                results[batch, t] = run_pair(os.path.abspath(__file__), libs, t, argv, args)
    note = (f"dlcore's first {CHECK_STEPS} step losses checked against torch's (|diff| < {LOSS_TOL})"
            if torch_available() else "dlcore alone")
    title = f"LeNet-5 train step (SGD lr {LR} momentum {MOMENTUM}, cross-entropy), MNIST-shaped batch"
    print("\n".join(header(title, args, peak, note)))
    warning = foreign_warning(results.values())
    if warning:
        print(warning)
    print()
    head = ["batch", "thr", "dlcore ms", "torch ms", "dlcore img/s", "torch img/s", "torch/dlcore", "goal", "met"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for batch in batches:
        for t in args.threads:
            med, low = results[batch, t]["dlcore"]["rows"]["step"]
            cells = [str(batch), str(t), f"{1e3 * med:.2f} ({1e3 * low:.2f})"]
            if "torch" in results[batch, t]:
                tmed, tlow = results[batch, t]["torch"]["rows"]["step"]
                target = GOAL_SPEEDUP * batch / tmed
                cells += [f"{1e3 * tmed:.2f} ({1e3 * tlow:.2f})", f"{batch / med:,.0f}", f"{batch / tmed:,.0f}",
                          f"{tmed / med:.2f}", f"{GOAL_SPEEDUP}x torch ({target:,.0f} img/s)",
                          "pass" if batch / med >= target else "miss"]
            else:
                cells += ["-", f"{batch / med:,.0f}", "-", "-", "-", "-"]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
