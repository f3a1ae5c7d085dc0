"""A small run through every CUDA kernel family for compute-sanitizer (tools/gpu_check.sh):
small odd shapes, forward and backward, one optimizer step of each kind. Exits non-zero if
an op raises; the sanitizer reports memory errors and races on its own."""
import numpy as np

import dlcore
import dlcore.nn.functional as F
from dlcore import nn, optim


def main():
    dlcore.manual_seed(0)
    dlcore.cuda.manual_seed(0)
    dev = "cuda"
    x = dlcore.randn(3, 5, 7, device=dev, requires_grad=True)
    y = dlcore.randn(5, 1, device=dev, requires_grad=True)
    z = ((x * y + 1.5).tanh().sigmoid() / (x.abs() + 1.0)).exp().log().relu().clamp(0.1, 0.9)
    z = dlcore.where(z > 0.5, z, z * 2.0).sum(1).max(1).values.mean()
    z.backward()
    a = dlcore.randn(37, 19, device=dev, requires_grad=True)
    b = dlcore.randn(19, 23, device=dev, requires_grad=True)
    (a @ b).softmax(1).sum().backward()
    (a.T @ a).log_softmax(0).mean().backward()
    logits = dlcore.randn(13, 10, device=dev, requires_grad=True)
    target = dlcore.randint(0, 10, (13,), device=dev)
    F.cross_entropy(logits, target).backward()
    F.nll_loss(F.log_softmax(logits, 1), target, reduction="sum").backward()
    emb = nn.Embedding(11, 6).to(dev)
    F.dropout(emb(dlcore.randint(0, 11, (4, 5), device=dev)), 0.3).sum().backward()
    images = dlcore.randn(3, 2, 11, 9, device=dev, requires_grad=True)
    conv = nn.Conv2d(2, 4, 3, padding=1, stride=2).to(dev)
    out = F.max_pool2d(conv(images), 2, ceil_mode=True) + F.avg_pool2d(conv(images), 2, ceil_mode=True)
    out.sum().backward()
    cell = nn.LSTMCell(7, 9).to(dev)
    h, c = cell(dlcore.randn(4, 7, device=dev))
    (h.sum() + c.sum()).backward()
    cat = dlcore.cat([a, a * 2.0], 1)[dlcore.tensor([0, 3, 3], device=dev)]
    cat.sum().backward()
    model = nn.Sequential(nn.Linear(19, 8), nn.ReLU(), nn.Linear(8, 3)).to(dev)
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True),
                optim.Adam(model.parameters(), lr=1e-3), optim.AdamW(model.parameters(), lr=1e-3, amsgrad=True)):
        loss = F.cross_entropy(model(a.detach()), dlcore.randint(0, 3, (37,), device=dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, u = dlcore.randn(37, 19, device=dev), dlcore.randn(19, 37, device=dev)  # op(A): x, or u.T as a view
    v, w = dlcore.randn(19, 23, device=dev), dlcore.randn(23, 19, device=dev)  # op(B): v, or w.T as a view
    for precision in ("high", "medium"):  # the tensor-core GEMMs (TF32, BF16): odd shapes, all transposes
        dlcore.set_matmul_precision(precision)
        try:
            for left in (x, u.T):
                for right in (v, w.T):
                    left @ right
            (a @ b).sum().backward()
        finally:
            dlcore.set_matmul_precision("highest")
    # Every float32 GEMM kernel forced (the cp.async ones unsplit and split-K), odd shapes.
    from dlcore.cuda.kernels.gemm import gemm_with_tile, variants
    for kernel, (_, _, split_k) in variants().items():
        for splits in ((1, 3) if split_k else (0,)):
            gemm_with_tile(kernel, x._data, dlcore.randn(19, 70, device=dev)._data, splits=splits)
            gemm_with_tile(kernel, dlcore.randn(5, 3, 131, device=dev)._data,
                           dlcore.randn(5, 131, 33, device=dev)._data, splits=splits)
    # Every tensor-core tile forced, the Hopper wgmma one (256) where this device and build run it:
    # partial tiles, several tiles and K slices a problem, K tails.
    from dlcore import _C
    from dlcore.cuda.kernels.gemm_tc import gemm_tc_with_tile
    tiles = (64, 128) + ((256,) if _C.cuda.gemm_wgmma_available(0) else ())
    for mode in ("tf32", "bf16"):
        for tile in tiles:
            gemm_tc_with_tile(tile, x._data, dlcore.randn(19, 70, device=dev)._data, mode=mode)
            gemm_tc_with_tile(tile, dlcore.randn(3, 200, 131, device=dev)._data,
                              dlcore.randn(3, 300, 131, device=dev)._data, trans_b=True, mode=mode)
    dlcore.cuda.synchronize()
    host = model[0].weight.detach().cpu().numpy()
    assert np.isfinite(host).all(), "non-finite weights after the optimizer steps"
    print("sanitizer subset: ok")


if __name__ == "__main__":
    main()
