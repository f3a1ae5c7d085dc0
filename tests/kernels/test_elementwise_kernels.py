"""_C elementwise kernels (unary, binary, compare, where) vs NumPy float64 oracles.

Every test runs on each ISA the host supports (`isa` fixture), for float32 and float64,
over shapes with 1, odd sizes, primes, a model shape, 0-D, empty, and a size above the
kernels' OpenMP threshold (32768 elements).
"""
import numpy as np
import pytest

from dlcore import _C
from helpers import assert_close
from oracles import unary as unary_ref, unary_grad as unary_grad_ref, unary_input

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(atol=1e-6, rtol=1e-5), np.float64: dict(atol=1e-12, rtol=1e-11)}

UNARY_SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (257,), (64, 128), (40009,)]

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
    ("pow_scalar", 0.5, 0.0, True),
    ("pow_scalar", -1.5, 0.0, True),
    ("pow_scalar", 3.0, 0.0, True),
    ("pow_scalar", 0.0, 0.0, True),
]
CASE_IDS = [f"{n}({a},{b})" for n, a, b, _ in UNARY_CASES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", UNARY_CASES, ids=CASE_IDS)
def test_unary_forward_backward(isa, rng, case, dtype):
    name, alpha, beta, positive = case
    op = getattr(_C.UnaryOp, name)
    for shape in UNARY_SHAPES:
        x = unary_input(rng, shape, positive, dtype)
        x64 = x.astype(np.float64)
        y = _C.unary_forward(op, x, alpha, beta)
        assert y.dtype == dtype and y.shape == x.shape and y.flags.c_contiguous
        y_ref = unary_ref(name, x64, alpha, beta)
        assert_close(y, y_ref, **TOL[dtype], what=f"unary_forward({name}) {isa} {dtype.__name__} {shape}")

        g = np.asarray(rng.standard_normal(size=shape), dtype=dtype)
        gx = _C.unary_backward(op, x, np.asarray(y_ref, dtype=dtype), g, alpha, beta)
        assert gx.dtype == dtype and gx.shape == x.shape
        assert_close(gx, unary_grad_ref(name, x64, g.astype(np.float64), alpha, beta), **TOL[dtype],
                     what=f"unary_backward({name}) {isa} {dtype.__name__} {shape}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_backward_reads_only_what_it_needs(isa, rng, dtype):
    x = rng.uniform(0.1, 3.0, size=(5, 3)).astype(dtype)
    g = rng.standard_normal(size=x.shape).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    for name in ["exp", "tanh", "sigmoid", "sqrt"]:
        y = unary_ref(name, x64, 0.0, 0.0).astype(dtype)
        gx = _C.unary_backward(getattr(_C.UnaryOp, name), None, y, g)
        assert_close(gx, unary_grad_ref(name, x64, g64, 0.0, 0.0), **TOL[dtype], what=name)
    for name in ["log", "abs", "relu"]:
        gx = _C.unary_backward(getattr(_C.UnaryOp, name), x, None, g)
        assert_close(gx, unary_grad_ref(name, x64, g64, 0.0, 0.0), **TOL[dtype], what=name)
    gx = _C.unary_backward(_C.UnaryOp.neg, None, None, g)
    np.testing.assert_array_equal(gx, -g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_kinks_and_nan(isa, rng, dtype):
    x = np.array([-2.0, -0.0, 0.0, 1.5, np.nan], dtype=dtype)
    g = (rng.uniform(0.5, 2.0, size=x.shape)).astype(dtype)
    relu_grad = _C.unary_backward(_C.UnaryOp.relu, x, None, g)
    np.testing.assert_array_equal(relu_grad[:4], [0, 0, 0, g[3]])
    abs_grad = _C.unary_backward(_C.UnaryOp.abs, x, None, g)
    np.testing.assert_array_equal(abs_grad[:4], [-g[0], 0, 0, g[3]])
    # NaN propagates through relu and clamp, as in PyTorch.
    assert np.isnan(_C.unary_forward(_C.UnaryOp.relu, x)[4])
    assert np.isnan(_C.unary_forward(_C.UnaryOp.clamp, x, -1.0, 1.0)[4])
    # clamp's gradient is 1 on the closed interval [min, max].
    xc = np.array([-1.0, -0.5, 0.25, 0.7, 0.9], dtype=dtype)
    gc = _C.unary_backward(_C.UnaryOp.clamp, xc, None, np.ones_like(xc), -0.5, 0.7)
    np.testing.assert_array_equal(gc, [0, 1, 1, 1, 0])
    # sigmoid does not overflow for large |x|.
    big = np.array([-800.0, -90.0, 90.0, 800.0], dtype=dtype)
    s = _C.unary_forward(_C.UnaryOp.sigmoid, big)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [0.0, 0.0, 1.0, 1.0], atol=1e-30)


BINARY_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]
NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
             "maximum": np.maximum, "minimum": np.minimum}

# Pairs of shapes (broadcast by NumPy rules), from trivial to the parallel-path sizes.
BINARY_SHAPES = [
    ((7,), (7,)),
    ((), ()),
    ((), (3, 4)),
    ((3, 4), ()),
    ((1,), (5,)),
    ((3, 1, 5), (4, 5)),
    ((2, 3, 4, 5), (3, 1, 5)),
    ((64, 128), (128,)),
    ((64, 128), (64, 1)),
    ((1, 1, 1), (2, 1, 3)),
    ((0, 3), (3,)),
    ((2, 0), (2, 1)),
    ((40009,), (40009,)),
    ((300, 211), (211,)),
    ((300, 211), (300, 1)),
    ((5, 1, 7, 1), (1, 6, 1, 9)),
    ((1, 50021), ()),
]


def binary_inputs(rng, name, sa, sb, dtype):
    """pow: positive bases; div: divisors away from 0; otherwise normal samples."""
    if name == "pow":
        a = rng.uniform(0.5, 2.0, size=sa)
    else:
        a = rng.standard_normal(size=sa)
    if name == "div":
        b = rng.uniform(0.5, 2.0, size=sb) * rng.choice([-1.0, 1.0], size=sb)
    else:
        b = rng.standard_normal(size=sb)
    return np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)


def check_binary(name, a, b, dtype, what):
    out = _C.binary_forward(getattr(_C.BinaryOp, name), a, b)
    ref = NP_BINARY[name](a.astype(np.float64), b.astype(np.float64))
    assert out.dtype == dtype and out.flags.c_contiguous
    assert_close(out, ref, **TOL[dtype], what=what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_forward_broadcast(isa, rng, name, dtype):
    for sa, sb in BINARY_SHAPES:
        a, b = binary_inputs(rng, name, sa, sb, dtype)
        check_binary(name, a, b, dtype, f"binary_forward({name}) {isa} {dtype.__name__} {sa} vs {sb}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_forward_strided_views(isa, rng, name, dtype):
    base_a, base_b = binary_inputs(rng, name, (9, 14), (14, 9), dtype)
    big_a, big_b = binary_inputs(rng, name, (260, 300), (300, 260), dtype)
    views = [
        (base_a, base_b.T),                                        # transposed b
        (base_a.T, base_b),                                        # transposed a
        (base_a[::2, 1::3], base_b.T[::2, 1::3]),                  # sliced, both strided
        (np.broadcast_to(base_a[:1], (9, 14)), base_b.T),          # 0-stride rows
        (np.broadcast_to(base_a[:, :1], (9, 14)), base_a),         # 0-stride columns
        (np.broadcast_to(base_a[0, 0], (3, 9, 14)), base_a),       # all-0 strides
        (base_a.T[None, :, :], base_b[:, None, :]),                # (1,14,9) vs (14,1,9)
        (base_a[:, 3], base_b[3]),                                 # column view vs row
        (big_a, big_b.T),                                          # large, transposed
        (big_a[:, ::3], big_b.T[:, 1::3]),                         # large, strided rows
    ]
    for k, (a, b) in enumerate(views):
        check_binary(name, a, b, dtype, f"binary_forward({name}) {isa} {dtype.__name__} view {k}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_maximum_minimum_propagate_nan(isa, rng, dtype):
    a = rng.standard_normal(size=(4, 6)).astype(dtype)
    b = rng.standard_normal(size=(4, 6)).astype(dtype)
    a[0, 1] = b[2, 3] = np.nan
    a[3, 5] = b[3, 5] = np.nan
    for name in ["maximum", "minimum"]:
        out = _C.binary_forward(getattr(_C.BinaryOp, name), a, b)
        np.testing.assert_array_equal(out, NP_BINARY[name](a, b))
        out = _C.binary_forward(getattr(_C.BinaryOp, name), a, b[2, 3, ...])  # 0-D NaN view
        np.testing.assert_array_equal(out, NP_BINARY[name](a, b[2, 3]))


COMPARE_OPS = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
               "gt": np.greater, "ge": np.greater_equal}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(COMPARE_OPS))
def test_compare_forward(isa, rng, name, dtype):
    op = getattr(_C.CompareOp, name)
    for sa, sb in BINARY_SHAPES:
        # Small random integers so eq / le / ge see many ties.
        a = np.asarray(rng.integers(-3, 4, size=sa), dtype=dtype)
        b = np.asarray(rng.integers(-3, 4, size=sb), dtype=dtype)
        out = _C.compare_forward(op, a, b)
        assert out.dtype == np.bool_ and out.flags.c_contiguous
        np.testing.assert_array_equal(out, COMPARE_OPS[name](a, b), err_msg=f"{name} {sa} vs {sb}")
    a = rng.integers(-3, 4, size=(6, 5)).astype(dtype)
    a[1, 2] = np.nan
    out = _C.compare_forward(op, a.T, a[:, :1].T)
    np.testing.assert_array_equal(out, COMPARE_OPS[name](a.T, a[:, :1].T))


WHERE_SHAPES = [
    ((7,), (7,), (7,)),
    ((), (), ()),
    ((3, 1, 5), (4, 5), ()),
    ((4, 5), (), (3, 1, 5)),
    ((64, 128), (64, 128), (128,)),
    ((1, 128), (64, 1), (64, 128)),
    ((0, 4), (4,), ()),
    ((300, 211), (300, 211), (300, 211)),
    ((300, 211), (211,), ()),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_forward(isa, rng, dtype):
    for sc, sa, sb in WHERE_SHAPES:
        cond = rng.random(size=sc) < 0.5
        cond = np.asarray(cond)
        a = np.asarray(rng.standard_normal(size=sa), dtype=dtype)
        b = np.asarray(rng.standard_normal(size=sb), dtype=dtype)
        out = _C.where_forward(cond, a, b)
        assert out.dtype == dtype and out.flags.c_contiguous
        np.testing.assert_array_equal(out, np.where(cond, a, b), err_msg=f"{sc} {sa} {sb}")
    base = rng.standard_normal(size=(8, 11)).astype(dtype)
    cond = rng.random(size=(11, 8)) < 0.5
    out = _C.where_forward(cond.T, base, np.broadcast_to(base[:, :1], (8, 11)))
    np.testing.assert_array_equal(out, np.where(cond.T, base, base[:, :1]))


def test_isas_agree(rng):
    """Each supported ISA gives the generic kernel's results (within tolerance)."""
    isas = [name for name in ["generic", "avx2", "avx512"] if _C.isa_supported(name)]
    x = rng.uniform(0.1, 3.0, size=(37, 41)).astype(np.float32)
    g = rng.standard_normal(size=x.shape).astype(np.float32)
    b = rng.standard_normal(size=(41,)).astype(np.float32)
    previous = _C.cpu_isa()
    results = {}
    try:
        for name in isas:
            _C.set_cpu_isa(name)
            outs = []
            for op in _C.UnaryOp.__members__.values():
                y = _C.unary_forward(op, x, 0.5, 2.0)
                outs += [y, _C.unary_backward(op, x, y, g, 0.5, 2.0)]
            for op in _C.BinaryOp.__members__.values():
                outs.append(_C.binary_forward(op, x, b))
            results[name] = outs
    finally:
        _C.set_cpu_isa(previous)
    for name in isas[1:]:
        for k, (u, v) in enumerate(zip(results["generic"], results[name])):
            assert_close(v, u, atol=1e-6, rtol=1e-5, what=f"{name} vs generic, output {k}")


def test_unary_errors():
    x = np.ones((3, 4))
    with pytest.raises(TypeError, match=r"unary_forward: x must be float32 or float64, got int64"):
        _C.unary_forward(_C.UnaryOp.exp, np.ones((3,), dtype=np.int64))
    with pytest.raises(ValueError, match=r"unary_forward: x must be C-contiguous"):
        _C.unary_forward(_C.UnaryOp.exp, x.T)
    with pytest.raises(ValueError, match=r"unary_backward\(exp\): y is required"):
        _C.unary_backward(_C.UnaryOp.exp, x, None, x)
    with pytest.raises(ValueError, match=r"unary_backward\(log\): x is required"):
        _C.unary_backward(_C.UnaryOp.log, None, x, x)
    with pytest.raises(ValueError, match=r"unary_backward\(relu\): x must have shape \(3, 4\), got \(4, 3\)"):
        _C.unary_backward(_C.UnaryOp.relu, np.ones((4, 3)), None, x)
    with pytest.raises(TypeError, match=r"unary_backward\(tanh\): y must have the dtype of grad_y"):
        _C.unary_backward(_C.UnaryOp.tanh, None, x.astype(np.float32), x)


def test_broadcast_errors():
    a = np.ones((3,))
    with pytest.raises(ValueError, match=r"binary_forward\(add\): .*broadcast.*\(3,\) and \(4,\)"):
        _C.binary_forward(_C.BinaryOp.add, a, np.ones((4,)))
    with pytest.raises(ValueError, match=r"binary_forward\(mul\): .*\(3, 1, 5\) and \(4, 6\)"):
        _C.binary_forward(_C.BinaryOp.mul, np.ones((3, 1, 5)), np.ones((4, 6)))
    with pytest.raises(ValueError, match=r"compare_forward\(lt\): .*\(2,\) and \(3,\)"):
        _C.compare_forward(_C.CompareOp.lt, np.ones((2,)), np.ones((3,)))
    with pytest.raises(ValueError, match=r"where_forward: .*\(2,\), \(3,\) and \(\)"):
        _C.where_forward(np.ones((2,), dtype=bool), np.ones((3,)), np.ones(()))
    with pytest.raises(ValueError, match=r"binary_forward\(sub\): b has a negative stride"):
        _C.binary_forward(_C.BinaryOp.sub, a, a[::-1])
    with pytest.raises(ValueError, match=r"at most 8"):
        _C.binary_forward(_C.BinaryOp.add, np.ones((1,) * 9), a)
    with pytest.raises(TypeError, match=r"binary_forward\(add\): b must have the dtype of a"):
        _C.binary_forward(_C.BinaryOp.add, a, a.astype(np.float32))
    with pytest.raises(TypeError, match=r"a must be float32 or float64, got int32"):
        _C.binary_forward(_C.BinaryOp.add, a.astype(np.int32), a.astype(np.int32))
    with pytest.raises(TypeError, match=r"where_forward: cond must be bool, got float64"):
        _C.where_forward(a, a, a)
