"""CUDA elementwise kernels (csrc/cuda/elementwise.cu) vs NumPy float64 oracles: the
dlcore.cuda.kernels.elementwise mirror (unary, binary, compare, where) and the raw
_C.cuda.strided_copy / fill that CudaArray copies, casts and fills run on.

Every op code, float32 / float64 (int64 and bool where the op takes them), broadcast shapes,
transposed / sliced / negative-stride / 0-stride views, sizes 1, 7 and 1000003 (not a
multiple of the 4-float vector width: the vectorised path's tail), unaligned pointers (the
scalar path), every cast pair, poisoned outputs (NaN / -7 blocks left in the allocator's cache
before each call, or sentinel-filled buffers around strided views), bad input, and one
> 2^31-element copy and fill. Skips without a CUDA device.

Run: DLCORE_DEV_BUILD=<build> PYTHONPATH=python python3 -m pytest tests/cuda/test_cuda_elementwise.py -q -rs
"""
import numpy as np
import pytest

import dlcore
from dlcore import _C
from helpers import assert_close
from oracles import unary as unary_ref, unary_grad as unary_grad_ref, unary_input

pytestmark = pytest.mark.skipif(not dlcore.cuda.is_available(), reason="no CUDA device")

if dlcore.cuda.is_available():  # the device modules import only where the backend runs
    from dlcore.cuda.array import DTYPE_CODE, broadcast_to, element_strides, empty, from_numpy
    from dlcore.cuda.kernels import elementwise as ew

U, B, CMP = _C.UnaryOp, _C.BinaryOp, _C.CompareOp
FLOATS = [np.float32, np.float64]
ALL_DTYPES = [np.float32, np.float64, np.int64, np.bool_]
TOL = {np.float32: dict(atol=1e-6, rtol=1e-5), np.float64: dict(atol=1e-12, rtol=1e-11)}
BIG = 1000003  # a prime: not a multiple of 4 (float32 packs) or 2 (float64 packs)


def dev(x):
    """x on device 0 with its exact shape (reshape keeps 0-d arrays 0-d)."""
    x = np.asarray(x)
    return from_numpy(x, 0).reshape(x.shape)


def poison(shape, dtype):
    """Frees a NaN- (float) or -7- (int64) filled device block of an output's size, so the
    next empty() of that size most likely reuses it: an element a kernel skips stays poison."""
    if np.dtype(dtype).kind in "fi" and int(np.prod(shape)) > 0:
        block = dev(np.full(shape, np.nan if np.dtype(dtype).kind == "f" else -7, dtype=dtype))
        del block


def bcast(t, shape):
    """np.broadcast_to for NumPy arrays, array.broadcast_to for CudaArrays."""
    return np.broadcast_to(t, shape) if isinstance(t, np.ndarray) else broadcast_to(t, shape)


# ---- unary --------------------------------------------------------------------------------

# (name, alpha, beta, positive-only input)
UNARY_CASES = [
    ("neg", 0.0, 0.0, False),
    ("exp", 0.0, 0.0, False),
    ("log", 0.0, 0.0, True),
    ("sqrt", 0.0, 0.0, True),
    ("abs", 0.0, 0.0, False),
    ("relu", 0.0, 0.0, False),
    ("tanh", 0.0, 0.0, False),
    ("sigmoid", 0.0, 0.0, False),
    ("clamp", -0.5, 0.7, False),
    ("clamp", -np.inf, 0.3, False),
    ("clamp", 0.1, np.inf, False),
    ("pow_scalar", 2.0, 0.0, True),
    ("pow_scalar", -1.5, 0.0, True),
    ("pow_scalar", 0.0, 0.0, True),
]
CASE_IDS = [f"{n}({a},{b})" for n, a, b, _ in UNARY_CASES]
UNARY_SHAPES = [(), (0,), (1,), (7,), (3, 5), (64, 128), (BIG,)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", UNARY_CASES, ids=CASE_IDS)
def test_unary_forward_backward(rng, case, dtype):
    name, alpha, beta, positive = case
    op = getattr(U, name)
    for shape in UNARY_SHAPES:
        x = unary_input(rng, shape, positive, dtype)
        x64 = x.astype(np.float64)
        what = f"{name} {dtype.__name__} {shape}"
        dx = dev(x)
        poison(shape, dtype)
        y = ew.unary_forward(op, dx, alpha, beta)
        assert y.dtype == dtype and y.shape == x.shape and y.is_contiguous()
        y_ref = unary_ref(name, x64, alpha, beta)
        assert_close(y.get(), y_ref, **TOL[dtype], what=f"unary_forward({what})")

        g = np.asarray(rng.standard_normal(size=shape), dtype=dtype)
        dy, dg = dev(np.asarray(y_ref, dtype=dtype)), dev(g)
        poison(shape, dtype)
        gx = ew.unary_backward(op, dx, dy, dg, alpha, beta)
        assert gx.dtype == dtype and gx.shape == x.shape
        assert_close(gx.get(), unary_grad_ref(name, x64, g.astype(np.float64), alpha, beta), **TOL[dtype],
                     what=f"unary_backward({what})")


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_unaligned_and_strided_inputs(rng, dtype):
    """x[1:] starts 4 or 8 bytes past an aligned block (the scalar path); x.T is copied first."""
    base = rng.uniform(0.1, 3.0, size=BIG + 1).astype(dtype)
    g = rng.standard_normal(size=BIG + 1).astype(dtype)
    x, gd = dev(base)[1:], dev(g)[1:]
    for name in ["exp", "sqrt", "log", "sigmoid"]:
        op = getattr(U, name)
        ref = unary_ref(name, base[1:].astype(np.float64), 0.0, 0.0)
        assert_close(ew.unary_forward(op, x).get(), ref, **TOL[dtype], what=f"{name} unaligned")
        y = dev(ref.astype(dtype))
        gx = ew.unary_backward(op, x, y, gd)
        assert_close(gx.get(), unary_grad_ref(name, base[1:].astype(np.float64), g[1:].astype(np.float64),
                                              0.0, 0.0), **TOL[dtype], what=f"{name} backward unaligned")
    m = rng.standard_normal(size=(37, 41)).astype(dtype)
    out = ew.unary_forward(U.tanh, dev(m).T)
    assert out.shape == (41, 37)
    assert_close(out.get(), np.tanh(m.T.astype(np.float64)), **TOL[dtype], what="tanh of a transposed view")


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_kinks_and_nan(rng, dtype):
    x = np.array([-2.0, -0.0, 0.0, 1.5, np.nan], dtype=dtype)
    g = rng.uniform(0.5, 2.0, size=x.shape).astype(dtype)
    relu_grad = ew.unary_backward(U.relu, dev(x), None, dev(g)).get()
    np.testing.assert_array_equal(relu_grad[:4], [0, 0, 0, g[3]])
    abs_grad = ew.unary_backward(U.abs, dev(x), None, dev(g)).get()
    np.testing.assert_array_equal(abs_grad[:4], [-g[0], 0, 0, g[3]])
    assert np.isnan(ew.unary_forward(U.relu, dev(x)).get()[4])
    assert np.isnan(ew.unary_forward(U.clamp, dev(x), -1.0, 1.0).get()[4])
    # clamp's gradient is 1 on the closed interval [min, max].
    xc = np.array([-1.0, -0.5, 0.25, 0.7, 0.9], dtype=dtype)
    gc = ew.unary_backward(U.clamp, dev(xc), None, dev(np.ones_like(xc)), -0.5, 0.7).get()
    np.testing.assert_array_equal(gc, [0, 1, 1, 1, 0])
    # sigmoid never overflows; tanh saturates.
    big = np.array([-800.0, -90.0, 90.0, 800.0], dtype=dtype)
    np.testing.assert_allclose(ew.unary_forward(U.sigmoid, dev(big)).get(), [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    np.testing.assert_array_equal(ew.unary_forward(U.tanh, dev(big)).get(), [-1.0, -1.0, 1.0, 1.0])
    # pow_scalar with exponent 0: gradient 0 everywhere, 0 ** 0 = 1.
    xp = np.array([0.0, 2.0, 3.5], dtype=dtype)
    np.testing.assert_array_equal(ew.unary_backward(U.pow_scalar, dev(xp), None, dev(xp + 1), 0.0).get(), 0)
    np.testing.assert_array_equal(ew.unary_forward(U.pow_scalar, dev(xp), 0.0).get(), 1)


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_backward_reads_only_what_it_needs(rng, dtype):
    x = rng.uniform(0.1, 3.0, size=(5, 3)).astype(dtype)
    g = rng.standard_normal(size=x.shape).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    for name in ["exp", "tanh", "sigmoid", "sqrt"]:
        y = unary_ref(name, x64, 0.0, 0.0).astype(dtype)
        gx = ew.unary_backward(getattr(U, name), None, dev(y), dev(g))
        assert_close(gx.get(), unary_grad_ref(name, x64, g64, 0.0, 0.0), **TOL[dtype], what=name)
    for name in ["log", "abs", "relu"]:
        gx = ew.unary_backward(getattr(U, name), dev(x), None, dev(g))
        assert_close(gx.get(), unary_grad_ref(name, x64, g64, 0.0, 0.0), **TOL[dtype], what=name)
    np.testing.assert_array_equal(ew.unary_backward(U.neg, None, None, dev(g)).get(), -g)


def test_unary_raw_binding_writes_every_element(rng):
    """Poisoned (NaN) outputs of the raw bindings come back fully overwritten."""
    for dtype in FLOATS:
        x = rng.uniform(0.1, 3.0, size=BIG).astype(dtype)
        dx = dev(x)  # held: a raw call takes addresses, not arrays
        for offset in (0, 1):  # aligned (vectorised) and unaligned (scalar) output
            y = dev(np.full(BIG + 1, np.nan, dtype=dtype))[offset:offset + BIG]
            _C.cuda.unary_forward(int(U.sqrt), DTYPE_CODE[np.dtype(dtype)], BIG, dx.ptr, y.ptr, 0.0, 0.0)
            assert_close(y.get(), np.sqrt(x.astype(np.float64)), **TOL[dtype], what=f"sqrt offset {offset}")


# ---- binary -------------------------------------------------------------------------------

BINARY_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]
INT_OPS = ["add", "sub", "mul", "maximum", "minimum"]
NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
             "maximum": np.maximum, "minimum": np.minimum}

BINARY_SHAPES = [
    ((1,), (1,)),
    ((7,), (7,)),
    ((), ()),
    ((), (4, 3)),
    ((4, 3), ()),
    ((1,), (5,)),
    ((3, 1, 5), (4, 5)),
    ((2, 3, 4, 5), (3, 1, 5)),
    ((64, 128), (128,)),
    ((64, 128), (64, 1)),
    ((0, 3), (3,)),
    ((5, 1, 7, 1), (1, 6, 1, 9)),
    ((2, 1, 2, 1, 2, 1, 2, 3), (2, 1, 2, 1, 2, 3)),  # 8 dims
    ((BIG,), (BIG,)),
    ((BIG,), ()),
    ((300, 211), (300, 1)),
]


def binary_inputs(rng, name, sa, sb, dtype):
    """pow: positive bases; div: divisors away from 0; int64: small integers."""
    if np.dtype(dtype) == np.int64:
        return rng.integers(-1000, 1000, size=sa), rng.integers(-1000, 1000, size=sb)
    a = rng.uniform(0.5, 2.0, size=sa) if name == "pow" else rng.standard_normal(size=sa)
    if name == "div":
        b = rng.uniform(0.5, 2.0, size=sb) * rng.choice([-1.0, 1.0], size=sb)
    else:
        b = rng.standard_normal(size=sb)
    return np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)


def check_binary(name, a_host, b_host, a_dev, b_dev, dtype, what):
    poison(np.broadcast_shapes(a_host.shape, b_host.shape), dtype)
    out = ew.binary_forward(getattr(B, name), a_dev, b_dev)
    assert out.dtype == dtype and out.is_contiguous(), what
    if np.dtype(dtype) == np.int64:
        np.testing.assert_array_equal(out.get(), NP_BINARY[name](a_host, b_host), err_msg=what)
    else:
        ref = NP_BINARY[name](a_host.astype(np.float64), b_host.astype(np.float64))
        assert_close(out.get(), ref, **TOL[dtype], what=what)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_forward_broadcast(rng, name, dtype):
    for sa, sb in BINARY_SHAPES:
        a, b = binary_inputs(rng, name, sa, sb, dtype)
        check_binary(name, a, b, dev(a), dev(b), dtype, f"binary_forward({name}) {dtype.__name__} {sa} vs {sb}")


@pytest.mark.parametrize("name", INT_OPS)
def test_binary_forward_int64(rng, name):
    for sa, sb in BINARY_SHAPES:
        a, b = binary_inputs(rng, name, sa, sb, np.int64)
        check_binary(name, a, b, dev(a), dev(b), np.int64, f"binary_forward({name}) int64 {sa} vs {sb}")
    # Overflow wraps modulo 2^64 as NumPy's.
    edge = np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min, 3], dtype=np.int64)
    with np.errstate(over="ignore"):
        check_binary(name, edge, edge[::-1].copy(), dev(edge), dev(edge)[::-1], np.int64, f"{name} int64 wrap")


# (description, view applied to both the NumPy and the device array of a (9, 14) / (14, 9) pair)
VIEWS = [
    ("b transposed", lambda a, b: (a, b.T)),
    ("a transposed", lambda a, b: (a.T, b)),
    ("both sliced", lambda a, b: (a[::2, 1::3], b.T[::2, 1::3])),
    ("negative strides", lambda a, b: (a[::-1], b.T[::-1, ::-1])),
    ("0-stride rows", lambda a, b: (bcast(a[:1], (9, 14)), b.T)),
    ("0-stride columns", lambda a, b: (bcast(a[:, :1], (9, 14)), a)),
    ("all-0 strides", lambda a, b: (bcast(a[0:1, 0:1], (3, 9, 14)), a)),
    ("new axes", lambda a, b: (a.T[None, :, :], b[:, None, :])),
    ("column vs row", lambda a, b: (a[:, 3], b[3])),
    ("reversed column vs row", lambda a, b: (a[::-1, 3], b[3, ::-1])),
]


VIEW_CASES = [(name, dtype) for dtype in FLOATS for name in BINARY_OPS] + [(name, np.int64) for name in INT_OPS]


@pytest.mark.parametrize("name,dtype", VIEW_CASES)
def test_binary_forward_strided_views(rng, name, dtype):
    a, b = binary_inputs(rng, name, (9, 14), (14, 9), dtype)
    da, db = dev(a), dev(b)
    for what, view in VIEWS:
        ha, hb = view(a, b)
        va, vb = view(da, db)
        check_binary(name, ha, hb, va, vb, dtype, f"binary_forward({name}) {np.dtype(dtype)} {what}")


def test_binary_vectorised_path_and_tail(rng):
    """Same-shape contiguous float32: aligned (16-byte packs + 3-element tail) and offset by
    one element (scalar path) give the same, correct results; NaN-poisoned outputs are all written."""
    for dtype in FLOATS:
        a = rng.standard_normal(size=BIG + 1).astype(dtype)
        b = rng.standard_normal(size=BIG + 1).astype(dtype)
        da, db = dev(a), dev(b)
        for off_a, off_b, off_out in [(0, 0, 0), (1, 1, 1), (0, 1, 0), (1, 0, 1)]:
            out = dev(np.full(BIG + 1, np.nan, dtype=dtype))[off_out:off_out + BIG]
            va, vb = da[off_a:off_a + BIG], db[off_b:off_b + BIG]
            _C.cuda.binary_forward(int(B.mul), DTYPE_CODE[np.dtype(dtype)], [BIG], va.ptr, [1], vb.ptr, [1], out.ptr)
            ref = a[off_a:off_a + BIG].astype(np.float64) * b[off_b:off_b + BIG]
            assert_close(out.get(), ref, **TOL[dtype], what=f"mul {dtype.__name__} offsets {off_a, off_b, off_out}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_maximum_minimum_propagate_nan(rng, dtype):
    a = rng.standard_normal(size=(4, 6)).astype(dtype)
    b = rng.standard_normal(size=(4, 6)).astype(dtype)
    a[0, 1] = b[2, 3] = np.nan
    a[3, 5] = b[3, 5] = np.nan
    for name in ["maximum", "minimum"]:
        out = ew.binary_forward(getattr(B, name), dev(a), dev(b)).get()
        np.testing.assert_array_equal(out, NP_BINARY[name](a, b))
        out = ew.binary_forward(getattr(B, name), dev(a), dev(b)[2, 3]).get()  # 0-D NaN view
        np.testing.assert_array_equal(out, NP_BINARY[name](a, b[2, 3]))


def test_binary_numpy_operand_is_uploaded(rng):
    """The op layer passes small NumPy constants (e.g. pow's backward b - 1)."""
    a = rng.uniform(0.5, 2.0, size=(3, 4)).astype(np.float32)
    out = ew.binary_forward(B.sub, dev(a), np.asarray(1, dtype=np.float32))
    assert_close(out.get(), a.astype(np.float64) - 1, what="a - numpy 1")
    out = ew.where_forward(dev(a > 1), np.zeros((), dtype=np.float32), dev(a))
    np.testing.assert_array_equal(out.get(), np.where(a > 1, 0, a))


def test_binary_deterministic(rng):
    a = rng.standard_normal(size=(257, 33)).astype(np.float32)
    b = rng.uniform(0.5, 2.0, size=(33,)).astype(np.float32)
    g = rng.standard_normal(size=a.shape).astype(np.float32)
    da, db, dg = dev(a), dev(b), dev(g)
    runs = [(ew.binary_forward(B.pow, da, db).get(), ew.unary_backward(U.tanh, None, da, dg).get())
            for _ in range(2)]
    for u, v in zip(*runs):
        assert u.tobytes() == v.tobytes()


# ---- compare and where ---------------------------------------------------------------------

COMPARE_OPS = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
               "gt": np.greater, "ge": np.greater_equal}


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", list(COMPARE_OPS))
def test_compare_forward(rng, name, dtype):
    op = getattr(CMP, name)
    for sa, sb in BINARY_SHAPES:
        # Small random integers so eq / le / ge see many ties.
        a = np.asarray(rng.integers(-3, 4, size=sa)).astype(dtype)
        b = np.asarray(rng.integers(-3, 4, size=sb)).astype(dtype)
        out = ew.compare_forward(op, dev(a), dev(b))
        assert out.dtype == np.bool_ and out.is_contiguous()
        np.testing.assert_array_equal(out.get(), COMPARE_OPS[name](a, b), err_msg=f"{name} {dtype} {sa} vs {sb}")
    a = rng.integers(-3, 4, size=(6, 5)).astype(dtype)
    if np.dtype(dtype) in (np.float32, np.float64):
        a[1, 2] = np.nan
    da = dev(a)
    views = [(a.T, a[:, :1].T, da.T, da[:, :1].T), (a[::-1, ::2], a[0, ::2], da[::-1, ::2], da[0, ::2])]
    for ha, hb, va, vb in views:
        np.testing.assert_array_equal(ew.compare_forward(op, va, vb).get(), COMPARE_OPS[name](ha, hb),
                                      err_msg=f"{name} {dtype} views")


def test_compare_poisoned_bool_output(rng):
    a = rng.integers(-3, 4, size=(BIG,)).astype(np.float32)
    b = rng.integers(-3, 4, size=(BIG,)).astype(np.float32)
    da, db = dev(a), dev(b)  # held: a raw call takes addresses, not arrays
    for poison in (True, False):
        out = dev(np.full(BIG, poison))
        _C.cuda.compare_forward(int(CMP.lt), DTYPE_CODE[np.dtype(np.float32)], [BIG], da.ptr, [1], db.ptr, [1],
                                out.ptr)
        np.testing.assert_array_equal(out.get(), a < b)


WHERE_SHAPES = [
    ((1,), (1,), (1,)),
    ((7,), (7,), (7,)),
    ((), (), ()),
    ((3, 1, 5), (4, 5), ()),
    ((4, 5), (), (3, 1, 5)),
    ((), (4, 3), (4, 3)),
    ((64, 128), (64, 128), (128,)),
    ((1, 128), (64, 1), (64, 128)),
    ((0, 4), (4,), ()),
    ((BIG,), (BIG,), ()),
]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_where_forward(rng, dtype):
    for sc, sa, sb in WHERE_SHAPES:
        cond = np.asarray(rng.random(size=sc) < 0.5)
        a = np.asarray(rng.standard_normal(size=sa) * 5).astype(dtype)
        b = np.asarray(rng.standard_normal(size=sb) * 5).astype(dtype)
        dc, da, db = dev(cond), dev(a), dev(b)
        poison(np.broadcast_shapes(sc, sa, sb), dtype)
        out = ew.where_forward(dc, da, db)
        assert out.dtype == dtype and out.is_contiguous()
        np.testing.assert_array_equal(out.get(), np.where(cond, a, b), err_msg=f"{sc} {sa} {sb}")
    base = (rng.standard_normal(size=(8, 11)) * 5).astype(dtype)
    cond = rng.random(size=(11, 8)) < 0.5
    db = dev(base)
    out = ew.where_forward(dev(cond).T, db[::-1], bcast(db[:, :1], (8, 11)))
    np.testing.assert_array_equal(out.get(), np.where(cond.T, base[::-1], base[:, :1]))


# ---- strided_copy and fill -----------------------------------------------------------------

def cast_source(rng, dtype, shape):
    """Values that exercise each cast: fractions of both signs, exact zeros, large magnitudes."""
    v = rng.standard_normal(size=shape) * 50
    v.flat[::5] = 0.0
    return v.astype(dtype)


def raw_copy(dst, src):
    _C.cuda.strided_copy(dst.ptr, DTYPE_CODE[dst.dtype], element_strides(dst), src.ptr, DTYPE_CODE[src.dtype],
                         element_strides(src), list(dst.shape))


@pytest.mark.parametrize("src_dtype", ALL_DTYPES)
@pytest.mark.parametrize("dst_dtype", ALL_DTYPES)
def test_strided_copy_casts_and_layouts(rng, src_dtype, dst_dtype):
    src = cast_source(rng, src_dtype, (12, 10))
    dsrc = dev(src)
    sentinel = np.array(7, dtype=dst_dtype)
    # Each src view is copied into step-2 views (forwards and backwards) of a sentinel-filled
    # buffer, so unwritten elements and stray writes both show.
    cases = [
        (lambda s: s, "contiguous"),
        (lambda s: s.T, "transposed"),
        (lambda s: s[::-1, ::3], "negative and step strides"),
        (lambda s: bcast(s[:1], (12, 10)), "0-stride rows"),
        (lambda s: bcast(s[2:3, 4:5], (3, 12, 10)), "all-0 strides"),
        (lambda s: s[5, 3], "0-d"),
        (lambda s: s[3:3], "empty"),
    ]
    for view, what in cases:
        hv, dv = view(src), view(dsrc)
        shape = hv.shape
        for dst_layout in ("forward", "backward"):
            big = np.full(tuple(2 * n + 1 for n in shape), sentinel, dtype=dst_dtype)
            dbig = dev(big)
            # n elements of 2n + 1, every other one: forwards from 1, or backwards from 2n - 1
            index = tuple(slice(1, 2 * n + 1, 2) if dst_layout == "forward" else slice(2 * n - 1, 0, -2)
                          for n in shape)
            raw_copy(dbig[index], dv)
            big[index] = hv.astype(dst_dtype)
            np.testing.assert_array_equal(dbig.get(), big,
                                          err_msg=f"{np.dtype(src_dtype)} -> {np.dtype(dst_dtype)} {what} {dst_layout}")


def test_strided_copy_float_to_int_truncates():
    x = np.array([2.7, -2.7, 0.5, -0.5, 1e15 + 0.5, -3.0], dtype=np.float64)
    for dtype in FLOATS:
        xd = x.astype(dtype)
        out = dev(xd).astype(np.int64)
        np.testing.assert_array_equal(out.get(), xd.astype(np.int64))
    flags = dev(np.array([0.0, -0.0, np.nan, 1e-30, -5.0])).astype(np.bool_).get()
    np.testing.assert_array_equal(flags, [False, False, True, True, True])


def test_strided_copy_contiguous_fast_path(rng):
    """Same dtype, contiguous (after merging dims): one device-to-device memcpy; a view copy
    of itself is a no-op."""
    x = rng.standard_normal(size=(BIG,)).astype(np.float32)
    dx = dev(x)
    out = empty((BIG,), np.float32, 0)
    raw_copy(out, dx)
    np.testing.assert_array_equal(out.get(), x)
    m = rng.standard_normal(size=(6, 7, 8))
    dm = dev(m)
    out = empty((6, 7, 8), np.float64, 0)
    raw_copy(out, dm)  # 3 dims merge into one
    np.testing.assert_array_equal(out.get(), m)
    raw_copy(dm, dm)
    np.testing.assert_array_equal(dm.get(), m)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_fill(dtype):
    for value in (2.5, -3.0, 0.0, 1.0):
        want = np.array(value).astype(dtype)
        big = np.full((9, 11), 7, dtype=dtype)
        dbig = dev(big)
        view = dbig[::-2, 1::3]
        _C.cuda.fill(view.ptr, DTYPE_CODE[view.dtype], element_strides(view), list(view.shape), value)
        big[::-2, 1::3] = want
        np.testing.assert_array_equal(dbig.get(), big, err_msg=f"{np.dtype(dtype)} fill {value} strided")
        whole = dev(np.full((3, 5), 7, dtype=dtype))
        _C.cuda.fill(whole.ptr, DTYPE_CODE[whole.dtype], element_strides(whole), [3, 5], value)
        np.testing.assert_array_equal(whole.get(), np.full((3, 5), want), err_msg=f"{np.dtype(dtype)} fill {value}")
    scalar = dev(np.array(5, dtype=dtype))
    _C.cuda.fill(scalar.ptr, DTYPE_CODE[scalar.dtype], [], [], 1.0)
    assert scalar.get() == np.array(1.0).astype(dtype)


def test_copy_and_fill_beyond_2_31_elements():
    """int64 index math: a (2^21 + 1, 1024) bool array has 2^31 + 1024 elements."""
    rows, cols = (1 << 21) + 1, 1024
    pattern = np.arange(cols) % 3 == 0
    big = empty((rows, cols), np.bool_, 0)
    raw_copy(big, bcast(dev(pattern), (rows, cols)))
    for r in (0, rows // 2, rows - 1):
        np.testing.assert_array_equal(big[r].get(), pattern, err_msg=f"row {r}")
    view = big[::-1]  # non-contiguous: the fill kernel, not a memset
    _C.cuda.fill(view.ptr, DTYPE_CODE[view.dtype], element_strides(view), list(view.shape), 1.0)
    for r in (0, rows - 1):
        assert big[r].get().all(), f"row {r}"
    del big, view


# ---- bad input ----------------------------------------------------------------------------

def test_errors():
    a = dev(np.ones((3,)))
    with pytest.raises(ValueError, match=r"binary_forward\(add\): .*broadcast.*\(3,\) and \(4,\)"):
        ew.binary_forward(B.add, a, dev(np.ones((4,))))
    with pytest.raises(ValueError, match=r"where_forward: .*\(2,\), \(3,\) and \(\)"):
        ew.where_forward(dev(np.ones((2,), dtype=bool)), a, dev(np.ones(())))
    with pytest.raises(ValueError, match=r"at most 8"):
        ew.binary_forward(B.add, dev(np.ones((1,) * 9)), a)
    with pytest.raises(TypeError, match=r"binary_forward\(add\): b must have the dtype of a"):
        ew.binary_forward(B.add, a, dev(np.ones((3,), dtype=np.float32)))
    with pytest.raises(TypeError, match=r"binary_forward\(div\): a must be float32 or float64, got int64"):
        ew.binary_forward(B.div, dev(np.ones(3, dtype=np.int64)), dev(np.ones(3, dtype=np.int64)))
    with pytest.raises(TypeError, match=r"where_forward: cond must be bool, got float64"):
        ew.where_forward(a, a, a)
    with pytest.raises(TypeError, match=r"unary_forward: x must be float32 or float64, got int64"):
        ew.unary_forward(U.exp, dev(np.ones(3, dtype=np.int64)))
    with pytest.raises(TypeError, match=r"unary_forward: x must be a CudaArray"):
        ew.unary_forward(U.exp, np.ones(3))
    with pytest.raises(ValueError, match=r"unary_backward\(exp\): y is required"):
        ew.unary_backward(U.exp, a, None, a)
    with pytest.raises(ValueError, match=r"unary_backward\(relu\): x must have shape \(3,\), got \(4,\)"):
        ew.unary_backward(U.relu, dev(np.ones(4)), None, a)
    with pytest.raises(TypeError, match=r"unary_backward\(tanh\): y must have the dtype of grad_y"):
        ew.unary_backward(U.tanh, None, dev(np.ones(3, dtype=np.float32)), a)
    # The raw bindings check codes and stride counts.
    with pytest.raises(ValueError, match=r"binary_forward: unknown op code 99"):
        _C.cuda.binary_forward(99, 1, [3], a.ptr, [1], a.ptr, [1], a.ptr)
    with pytest.raises(ValueError, match=r"dtype code"):
        _C.cuda.fill(a.ptr, 9, [1], [3], 1.0)
    with pytest.raises(ValueError, match=r"strided_copy: src has 1 strides for a shape of 2 dims"):
        _C.cuda.strided_copy(a.ptr, 1, [1, 1], a.ptr, 1, [1], [3, 1])
    with pytest.raises(ValueError, match=r"binary_forward\(pow\): dtype must be float32 or float64, got int64"):
        _C.cuda.binary_forward(int(B.pow), 2, [3], a.ptr, [1], a.ptr, [1], a.ptr)
