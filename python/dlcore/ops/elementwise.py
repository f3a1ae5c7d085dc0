"""Elementwise Functions: arithmetic with broadcasting, unary math and activations,
comparisons and where. Float math runs in the kernels (unary_*, binary_forward,
compare_forward, where_forward of _C or, for CUDA arrays, dlcore.cuda.kernels); integer/bool
tensors (indices, masks) use NumPy on the host and the int64 kernels on the GPU, and carry no
gradient."""
import numpy as np

from dlcore import _C, dtypes
from dlcore.autograd import Function
from dlcore.ops._util import as_tensor_like, broadcast_to, check_float, contig, is_cuda, lib, scalar_like, sum_to, zeros
from dlcore.tensor import Tensor

U = _C.UnaryOp
B = _C.BinaryOp
CMP = _C.CompareOp
_INF = float("inf")


def _binary(op, a, b):
    return lib(a).binary_forward(op, a, b)


# ---- binary arithmetic -------------------------------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ad, bd = a._data, b._data
        ctx.shapes = (ad.shape, bd.shape)
        return Tensor(_binary(B.add, ad, bd))

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (Tensor(sum_to(g._data, sa)) if na else None, Tensor(sum_to(g._data, sb)) if nb else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ad, bd = a._data, b._data
        ctx.shapes = (ad.shape, bd.shape)
        return Tensor(_binary(B.sub, ad, bd))

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        grad_b = None
        if nb:
            grad_b = Tensor(lib(g._data).unary_forward(U.neg, contig(sum_to(g._data, sb))))
        return (Tensor(sum_to(g._data, sa)) if na else None, grad_b)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a._data, b._data
        return Tensor(_binary(B.mul, a._data, b._data))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        return (
            Tensor(sum_to(_binary(B.mul, g._data, b), a.shape)) if na else None,
            Tensor(sum_to(_binary(B.mul, g._data, a), b.shape)) if nb else None,
        )


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = _binary(B.div, a._data, b._data)
        ctx.a_shape, ctx.b, ctx.out = a.shape, b._data, out
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        b, out = ctx.b, ctx.out
        na, nb = ctx.needs_input_grad
        grad_a = Tensor(sum_to(_binary(B.div, g._data, b), ctx.a_shape)) if na else None
        grad_b = None
        if nb:  # d(a/b)/db = -out / b
            t = _binary(B.div, _binary(B.mul, g._data, out), b)
            grad_b = Tensor(lib(g._data).unary_forward(U.neg, contig(sum_to(t, b.shape))))
        return grad_a, grad_b


class Pow(Function):
    """a ** b with a tensor exponent (a scalar exponent uses PowScalar)."""

    @staticmethod
    def forward(ctx, a, b):
        out = _binary(B.pow, a._data, b._data)
        ctx.a, ctx.b, ctx.out = a._data, b._data, out
        return Tensor(out)

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.a, ctx.b, ctx.out
        na, nb = ctx.needs_input_grad
        grad_a = grad_b = None
        if na:  # b * a^(b-1) = b * out / a, written without dividing by a
            a_pow = _binary(B.pow, a, _binary(B.sub, b, scalar_like(1, b.dtype, b)))
            grad_a = Tensor(sum_to(_binary(B.mul, g._data, _binary(B.mul, b, a_pow)), a.shape))
        if nb:  # out * log(a)
            log_a = lib(a).unary_forward(U.log, contig(broadcast_to(a, out.shape)))
            grad_b = Tensor(sum_to(_binary(B.mul, g._data, _binary(B.mul, out, log_a)), b.shape))
        return grad_a, grad_b


def _promote(op, a, b):
    """Operands as Tensors of one dtype (float wins over int, float64 over float32)."""
    if not isinstance(a, Tensor):
        a = as_tensor_like(a, b)
    if not isinstance(b, Tensor):
        b = as_tensor_like(b, a)
    da, db = a._data.dtype, b._data.dtype
    if da != db:
        dt = np.result_type(da, db)
        if dt not in dtypes.SUPPORTED:
            raise TypeError(f"{op}: cannot combine {da} and {db}")
        if da != dt:
            a = cast(a, dt)
        if db != dt:
            b = cast(b, dt)
    return a, b


_NUMPY_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide, "pow": np.power}


def _arith(fn, name, a, b):
    if isinstance(a, Tensor) and isinstance(b, Tensor):  # fast path: float tensors of one dtype
        da = a._data.dtype
        if da == b._data.dtype and da in dtypes.FLOATS:
            return fn.apply(a, b)
    a, b = _promote(name, a, b)
    if a._data.dtype not in dtypes.FLOATS:
        return Tensor(_integer_arith(name, a._data, b._data))
    return fn.apply(a, b)


_INT_BINARY = {"add": B.add, "sub": B.sub, "mul": B.mul}


def _integer_arith(name, a, b):
    """int64/bool arithmetic (indices, counts): NumPy on the host, the int64 kernels on the GPU;
    division gives float32 as in PyTorch."""
    if not is_cuda(a):
        if name == "div":
            return np.true_divide(a, b).astype(dtypes.float32)
        return _NUMPY_BINARY[name](a, b)
    if name in ("div", "pow"):
        return _binary(B.div if name == "div" else B.pow, a.astype(dtypes.float32), b.astype(dtypes.float32))
    return _binary(_INT_BINARY[name], a.astype(dtypes.int64), b.astype(dtypes.int64))


def add(a, b):
    return _arith(Add, "add", a, b)


def sub(a, b):
    return _arith(Sub, "sub", a, b)


def mul(a, b):
    return _arith(Mul, "mul", a, b)


def div(a, b):
    return _arith(Div, "div", a, b)


def pow(a, b):  # noqa: A001
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if a._data.dtype in dtypes.FLOATS:
            return PowScalar.apply(a, float(b))
    return _arith(Pow, "pow", a, b)


# ---- unary math and activations ----------------------------------------------------------
class _Unary(Function):
    """y = f(x) through _C.unary_forward; backward from x or y (whichever the kernel uses)."""

    op = None
    saves_output = False  # exp, tanh, sigmoid, sqrt: the derivative is cheapest from y

    @staticmethod
    def forward(ctx, x, alpha=0.0, beta=0.0):
        op = ctx.op
        y = lib(x._data).unary_forward(op, contig(x._data), alpha, beta)
        ctx.alpha, ctx.beta = alpha, beta
        if ctx.saves_output:
            ctx.x, ctx.y = None, y
        else:
            ctx.x, ctx.y = contig(x._data), None
        return Tensor(y)

    @staticmethod
    def backward(ctx, g):
        return Tensor(lib(g._data).unary_backward(ctx.op, ctx.x, ctx.y, contig(g._data), ctx.alpha, ctx.beta))


class Neg(_Unary):
    op = U.neg


class Exp(_Unary):
    op, saves_output = U.exp, True


class Log(_Unary):
    op = U.log


class Sqrt(_Unary):
    op, saves_output = U.sqrt, True


class Abs(_Unary):
    op = U.abs


class Relu(_Unary):
    op = U.relu


class Tanh(_Unary):
    op, saves_output = U.tanh, True


class Sigmoid(_Unary):
    op, saves_output = U.sigmoid, True


class Clamp(_Unary):
    op = U.clamp


class PowScalar(_Unary):
    op = U.pow_scalar


def neg(x):
    if isinstance(x, Tensor) and x._data.dtype not in dtypes.FLOATS:
        return Tensor(_integer_arith("sub", scalar_like(0, x._data.dtype, x._data), x._data))
    return Neg.apply(check_float("neg", x))


def exp(x):
    return Exp.apply(check_float("exp", x))


def log(x):
    return Log.apply(check_float("log", x))


def sqrt(x):
    return Sqrt.apply(check_float("sqrt", x))


def abs(x):  # noqa: A001
    if isinstance(x, Tensor) and x._data.dtype not in dtypes.FLOATS:
        if is_cuda(x._data):
            return Tensor(_binary(B.maximum, x._data, _integer_arith("sub", scalar_like(0, x._data.dtype, x._data),
                                                                      x._data)))
        return Tensor(np.abs(x._data))
    return Abs.apply(check_float("abs", x))


def relu(x):
    return Relu.apply(check_float("relu", x))


def tanh(x):
    return Tanh.apply(check_float("tanh", x))


def sigmoid(x):
    return Sigmoid.apply(check_float("sigmoid", x))


def clamp(x, min=None, max=None):  # noqa: A002
    check_float("clamp", x)
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    lo = -_INF if min is None else float(min)
    hi = _INF if max is None else float(max)
    return Clamp.apply(x, lo, hi)


# ---- comparisons and where -------------------------------------------------------------
def _compare(op, name, a, b):
    a, b = _promote(name, a, b)
    if a._data.dtype in dtypes.FLOATS or is_cuda(a._data):
        return Tensor(lib(a._data).compare_forward(op, a._data, b._data))
    fn = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
          "ge": np.greater_equal}[name]
    return Tensor(np.asarray(fn(a._data, b._data)))


def eq(a, b):
    return _compare(CMP.eq, "eq", a, b)


def ne(a, b):
    return _compare(CMP.ne, "ne", a, b)


def lt(a, b):
    return _compare(CMP.lt, "lt", a, b)


def le(a, b):
    return _compare(CMP.le, "le", a, b)


def gt(a, b):
    return _compare(CMP.gt, "gt", a, b)


def ge(a, b):
    return _compare(CMP.ge, "ge", a, b)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond, ctx.shapes = cond._data, (a.shape, b.shape)
        return Tensor(lib(a._data).where_forward(cond._data, a._data, b._data))

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        _, na, nb = ctx.needs_input_grad
        zero = zeros((), g._data.dtype, g._data)
        where_forward = lib(g._data).where_forward
        grad_a = Tensor(sum_to(where_forward(ctx.cond, g._data, zero), sa)) if na else None
        grad_b = Tensor(sum_to(where_forward(ctx.cond, zero, g._data), sb)) if nb else None
        return None, grad_a, grad_b


def where(cond, a, b):
    """cond ? a : b elementwise, broadcasting all three; differentiable in a and b."""
    if not isinstance(cond, Tensor) or cond._data.dtype != dtypes.bool_:
        raise TypeError("where: cond must be a bool Tensor")
    a, b = _promote("where", a, b)
    if a._data.dtype not in dtypes.FLOATS:
        if is_cuda(a._data):
            return Tensor(lib(a._data).where_forward(cond._data, a._data, b._data))
        return Tensor(np.where(cond._data, a._data, b._data))
    return Where.apply(cond, a, b)


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x._data.dtype
        return Tensor(x._data.astype(dtype))

    @staticmethod
    def backward(ctx, g):
        return Tensor(g._data.astype(ctx.dtype)), None


def cast(x, dtype):
    """x converted to dtype; differentiable between float types."""
    if x._data.dtype in dtypes.FLOATS and dtype in dtypes.FLOATS:
        return Cast.apply(x, dtype)
    if x.requires_grad and dtype in dtypes.FLOATS:
        raise TypeError(f"cast: cannot differentiate through a cast from {x._data.dtype} to {dtype}")
    return Tensor(x._data.astype(dtype))
