"""Tolerance checks against float64 NumPy oracles (see ../shared/STYLE.md)."""
import numpy as np

EPS = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}


def _assert_within(out, ref, tol, what):
    """|out - ref| <= tol elementwise (NaN fails); the message names the worst index."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != reference {ref.shape}"
    if out.size == 0:
        return
    tol = np.broadcast_to(tol, out.shape)
    err = np.abs(out - ref)
    bad = ~(err <= tol)
    if bad.any():
        ratio = np.where(np.isnan(err), np.inf, err / tol)
        worst = np.unravel_index(np.argmax(ratio), ratio.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {out.size} elements off; worst at {worst}: "
            f"got {out[worst]!r}, want {ref[worst]!r}, error {err[worst]:.3g} > tolerance {tol[worst]:.3g}"
        )


def assert_close(out, ref, *, atol=1e-6, rtol=1e-5, what=""):
    """|out - ref| <= atol + rtol * |ref| elementwise."""
    _assert_within(out, ref, atol + rtol * np.abs(np.asarray(ref, dtype=np.float64)), what)


def assert_close_reduction(out, ref, abs_ref, k, dtype, *, what=""):
    """For sums of k products: |out - ref| <= 2 * k * eps(dtype) * abs_ref + tiny, where
    abs_ref is the same reduction over absolute values (the K-scaled bound of STYLE.md)."""
    eps = EPS[np.dtype(dtype)]
    _assert_within(out, ref, 2.0 * max(k, 1) * eps * np.asarray(abs_ref, dtype=np.float64) + 1e-30, what)


def as_3d(x, start, end):
    """x viewed as (outer, R, inner) for a reduction over dims [start, end), and the reduced output shape."""
    shape = x.shape
    outer = int(np.prod(shape[:start], dtype=np.int64))
    R = int(np.prod(shape[start:end], dtype=np.int64))
    inner = int(np.prod(shape[end:], dtype=np.int64))
    return x.reshape(outer, R, inner), shape[:start] + shape[end:]
