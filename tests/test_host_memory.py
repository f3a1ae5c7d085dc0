"""The host cache (csrc/core/host_cache.h): large kernel outputs reuse freed blocks, stay
correct while alive, are 64-byte aligned, and the cache can be emptied or turned off."""
import gc
import os
import subprocess
import sys

import numpy as np

import dlcore
from dlcore import host_memory

BIG = 300_000  # float32 elements: 1.2 MB, above the 64 KiB the cache starts at


def relu_of(a):
    return dlcore.relu(dlcore.from_numpy(a)).numpy()


def test_a_freed_output_block_is_reused_and_values_stay_right():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(BIG).astype(np.float32), rng.standard_normal(BIG).astype(np.float32)
    y = relu_of(a)
    gc.collect()
    before = host_memory.memory_stats()
    del y
    gc.collect()
    freed = host_memory.memory_stats()
    assert freed["cached_bytes"] >= before["cached_bytes"] + 4 * BIG
    z = relu_of(b)
    after = host_memory.memory_stats()
    assert after["hits"] == freed["hits"] + 1
    np.testing.assert_array_equal(z, np.maximum(b, 0))


def test_live_outputs_never_share_memory_and_views_keep_their_block():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(BIG).astype(np.float32) for _ in range(4)]
    ys = [relu_of(x) for x in xs]
    assert len({y.ctypes.data for y in ys}) == 4
    view = ys[0][::3]  # the view holds its base's block
    expect = np.maximum(xs[0], 0)[::3]
    del ys[0]
    gc.collect()
    others = [relu_of(-x) for x in xs]  # allocate more while the view lives
    np.testing.assert_array_equal(view, expect)
    for x, y in zip(xs[1:], ys):
        np.testing.assert_array_equal(y, np.maximum(x, 0))
    for x, o in zip(xs, others):
        np.testing.assert_array_equal(o, np.maximum(-x, 0))


def test_blocks_are_aligned_and_at_most_a_quarter_larger_than_asked():
    for n in (16_385, 100_000, BIG, 1_000_003):
        before = host_memory.memory_stats()["in_use_bytes"]
        y = relu_of(np.ones(n, np.float32))
        grown = host_memory.memory_stats()["in_use_bytes"] - before
        assert y.ctypes.data % 64 == 0
        assert 4 * n <= grown <= 1.25 * 4 * n, (n, grown)
        del y


def test_empty_cache_returns_the_free_blocks():
    y = relu_of(np.ones(BIG, np.float32))
    del y
    gc.collect()
    assert host_memory.memory_stats()["cached_bytes"] > 0
    assert host_memory.empty_cache() > 0
    assert host_memory.memory_stats()["cached_bytes"] == 0


def test_a_zero_limit_turns_the_cache_off():
    code = ("import numpy as np, dlcore; from dlcore import host_memory as h\n"
            "for _ in range(3): y = dlcore.relu(dlcore.from_numpy(np.ones(300000, np.float32))).numpy()\n"
            "s = h.memory_stats(); print(s['limit_bytes'], s['hits'] + s['misses'], float(y.sum()))")
    env = dict(os.environ, DLCORE_HOST_CACHE_MB="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0", "300000.0"]


def test_a_leaf_takes_a_kernel_gradient_without_a_copy():
    """A kernel's output gradient on its own block becomes the leaf's .grad as is (autograd
    copies only arrays that may share memory with another)."""
    x = dlcore.from_numpy(np.random.default_rng(2).standard_normal(BIG).astype(np.float32))
    x.requires_grad_(True)
    dlcore.relu(x).sum().backward()
    assert type(x.grad.numpy().base).__name__ == "PyCapsule"
    np.testing.assert_array_equal(x.grad.numpy(), (x.detach().numpy() > 0).astype(np.float32))
