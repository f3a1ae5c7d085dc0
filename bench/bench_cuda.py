"""GPU benchmark (issue 6: correctness-first kernels; speed is the next issues' work): dlcore's
CUDA kernels side by side with PyTorch on the same device, in one run.

    python bench/bench_cuda.py

Each row: median over repeats of (time of `iters` calls, synchronised) / iters, for dlcore and
torch, and the ratio torch/dlcore (> 1: dlcore faster). Random inputs, warm-up first. The
floors (FLOP and byte counts over the card's peaks) are in bench/RESULTS.md.
"""
import statistics
import time

import numpy as np

import dlcore
import dlcore.nn.functional as F
from dlcore import nn


def timed(fn, sync, iters=20, repeats=7):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        times.append((time.perf_counter() - start) / iters)
    return statistics.median(times)


def lenet(lib_nn):
    return lib_nn.Sequential(
        lib_nn.Conv2d(1, 6, 5, padding=2), lib_nn.ReLU(), lib_nn.MaxPool2d(2),
        lib_nn.Conv2d(6, 16, 5), lib_nn.ReLU(), lib_nn.MaxPool2d(2), lib_nn.Flatten(),
        lib_nn.Linear(400, 120), lib_nn.ReLU(), lib_nn.Linear(120, 84), lib_nn.ReLU(), lib_nn.Linear(84, 10))


def main():
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False  # FP32 against FP32: no TF32 in either library
    torch.backends.cudnn.allow_tf32 = False
    rng = np.random.default_rng(0)
    dsync, tsync = dlcore.cuda.synchronize, torch.cuda.synchronize
    rows = []

    for m, n, k in ((1024, 1024, 1024), (2048, 2048, 2048), (64, 4096, 1024), (4096, 64, 576)):
        a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
        da, db = dlcore.tensor(a, device="cuda"), dlcore.tensor(b, device="cuda")
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        t_d = timed(lambda: da @ db, dsync)
        t_t = timed(lambda: ta @ tb, tsync)
        rows.append((f"matmul fp32 {m}x{n}x{k}", t_d, t_t, 2 * m * n * k / t_d / 1e12))

    x = rng.standard_normal((64, 6, 14, 14), dtype=np.float32)
    w = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)
    dx, dw = dlcore.tensor(x, device="cuda"), dlcore.tensor(w, device="cuda")
    tx, tw = torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda()
    rows.append(("conv2d LeNet C3 fwd (64,6,14,14)", timed(lambda: F.conv2d(dx, dw), dsync),
                 timed(lambda: torch.nn.functional.conv2d(tx, tw), tsync), None))

    images = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    dmodel = lenet(nn).to("cuda")
    dopt = dlcore.optim.Adam(dmodel.parameters(), lr=1e-3)
    di, dl = dlcore.tensor(images, device="cuda"), dlcore.tensor(labels, device="cuda")

    def dstep():
        loss = F.cross_entropy(dmodel(di), dl)
        dopt.zero_grad()
        loss.backward()
        dopt.step()

    tmodel = lenet(torch.nn).cuda()
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    ti, tl = torch.from_numpy(images).cuda(), torch.from_numpy(labels).cuda()

    def tstep():
        loss = torch.nn.functional.cross_entropy(tmodel(ti), tl)
        topt.zero_grad()
        loss.backward()
        topt.step()

    rows.append(("LeNet-5 train step, batch 64", timed(dstep, dsync), timed(tstep, tsync), None))

    print(f"device: {dlcore.cuda.get_device_name()}; torch {torch.__version__}")
    print(f"{'case':40s} {'dlcore ms':>10s} {'torch ms':>10s} {'torch/dlcore':>12s} {'dlcore TFLOP/s':>14s}")
    for name, t_d, t_t, tflops in rows:
        extra = f"{tflops:14.2f}" if tflops else ""
        print(f"{name:40s} {t_d * 1e3:10.3f} {t_t * 1e3:10.3f} {t_t / t_d:12.2f} {extra}")


if __name__ == "__main__":
    main()
