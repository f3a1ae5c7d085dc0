"""NumPy float64 reference implementations of the ops (the test oracles)."""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def unary(name, x, alpha=0.0, beta=0.0):
    """The elementwise unary op `name` (_C.UnaryOp's names); alpha, beta: clamp's min and max,
    pow_scalar's exponent (alpha)."""
    return {
        "neg": lambda: -x,
        "exp": lambda: np.exp(x),
        "log": lambda: np.log(x),
        "sqrt": lambda: np.sqrt(x),
        "abs": lambda: np.abs(x),
        "relu": lambda: np.maximum(x, 0.0),
        "tanh": lambda: np.tanh(x),
        "sigmoid": lambda: sigmoid(x),
        "clamp": lambda: np.minimum(np.maximum(x, alpha), beta),
        "pow_scalar": lambda: np.power(x, alpha),
    }[name]()


def unary_grad(name, x, g, alpha=0.0, beta=0.0):
    """f'(x) * g for unary(name, x, alpha, beta)."""
    d = {
        "neg": lambda: -np.ones_like(x),
        "exp": lambda: np.exp(x),
        "log": lambda: 1.0 / x,
        "sqrt": lambda: 0.5 / np.sqrt(x),
        "abs": lambda: np.sign(x),
        "relu": lambda: (x > 0).astype(np.float64),
        "tanh": lambda: 1.0 - np.tanh(x) ** 2,
        "sigmoid": lambda: sigmoid(x) * (1.0 - sigmoid(x)),
        "clamp": lambda: ((x >= alpha) & (x <= beta)).astype(np.float64),
        "pow_scalar": lambda: alpha * np.power(x, alpha - 1.0) if alpha != 0 else np.zeros_like(x),
    }[name]()
    return d * g


def unary_input(rng, shape, positive, dtype):
    """Random input of a unary op: in [0.1, 3) where the op needs positive x, else normal * 1.5."""
    if positive:
        return np.asarray(rng.uniform(0.1, 3.0, size=shape), dtype=dtype)
    return np.asarray(1.5 * rng.standard_normal(size=shape), dtype=dtype)


def softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim):
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


def cross_entropy(logits, target, reduction="mean", ignore_index=-100):
    lp = log_softmax(logits, 1)
    keep = target != ignore_index
    rows = np.zeros(len(target))
    rows[keep] = -lp[np.arange(len(target))[keep], target[keep]]
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else rows.sum() / keep.sum()


def logsumexp_rows(logits):
    """log sum_c exp(logits[n, c]) per row n, in float64."""
    x = logits.astype(np.float64)
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))


def cross_entropy_rows(logits, target, ignore_index):
    """(loss (N,), lse (N,)) as the loss kernels return them: 0 loss where target is ignore_index."""
    x = logits.astype(np.float64)
    lse = logsumexp_rows(x)
    keep = target != ignore_index
    loss = np.zeros(len(target))
    rows = np.arange(len(target))[keep]
    loss[keep] = lse[keep] - x[rows, target[keep]]
    return loss, lse


def cross_entropy_rows_backward(logits, target, grad_loss, ignore_index, lse=None):
    """d(sum_n grad_loss[n] * loss[n]) / d logits (N, C); lse as cross_entropy_rows returns it."""
    x = logits.astype(np.float64)
    p = np.exp(x - (logsumexp_rows(x) if lse is None else lse)[:, None])
    keep = target != ignore_index
    rows = np.arange(len(target))[keep]
    p[rows, target[keep]] -= 1.0
    grad = p * grad_loss.astype(np.float64)[:, None]
    grad[~keep] = 0.0
    return grad


def cross_entropy_case(rng, N, C, dtype, ignore_index=-100, scale=3.0, offset=0.0):
    """(logits (N, C), target (N,) int64 with a fifth of the rows ignore_index where N > 2,
    grad_loss (N,)): random inputs of the loss kernels."""
    logits = (offset + scale * rng.standard_normal((N, C))).astype(dtype)
    target = rng.integers(0, C, size=N).astype(np.int64)
    if N > 2:
        target[rng.choice(N, size=max(1, N // 5), replace=False)] = ignore_index
    grad_loss = rng.uniform(0.5, 1.5, size=N).astype(dtype)
    return logits, target, grad_loss


def nll_loss(logp, target):
    return -logp[np.arange(len(target)), target].mean()


def _pad(x, ph, pw, value):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    N, C, H, W = x.shape
    C_out, Cg, KH, KW = w.shape
    xp = _pad(x, padding[0], padding[1], 0.0)
    OH = (H + 2 * padding[0] - dilation[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (W + 2 * padding[1] - dilation[1] * (KW - 1) - 1) // stride[1] + 1
    y = np.zeros((N, C_out, OH, OW))
    og = C_out // groups
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        ws = w[g * og:(g + 1) * og]
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * dilation[0], kw * dilation[1]
                patch = xs[:, :, h0:h0 + stride[0] * (OH - 1) + 1:stride[0], w0:w0 + stride[1] * (OW - 1) + 1:stride[1]]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, kh, kw])
    if b is not None:
        y += b[None, :, None, None]
    return y


def _pool_out(n, k, s, p, d, ceil):
    eff = d * (k - 1) + 1
    num = n + 2 * p - eff
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool2d(x, k, s, p=(0, 0), d=(1, 1), ceil=False):
    N, C, H, W = x.shape
    OH, OW = _pool_out(H, k[0], s[0], p[0], d[0], ceil), _pool_out(W, k[1], s[1], p[1], d[1], ceil)
    y = np.full((N, C, OH, OW), -np.inf)
    for oh in range(OH):
        for ow in range(OW):
            for i in range(k[0]):
                for j in range(k[1]):
                    h, w = oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]
                    if 0 <= h < H and 0 <= w < W:
                        y[:, :, oh, ow] = np.maximum(y[:, :, oh, ow], x[:, :, h, w])
    return y


def avg_pool2d(x, k, s, p=(0, 0), ceil=False, count_include_pad=True):
    N, C, H, W = x.shape
    OH, OW = _pool_out(H, k[0], s[0], p[0], 1, ceil), _pool_out(W, k[1], s[1], p[1], 1, ceil)
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            full = (h1 - h0) * (w1 - w0)
            hs, ws, he, we = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            total = x[:, :, hs:he, ws:we].sum(axis=(2, 3))
            y[:, :, oh, ow] = total / (full if count_include_pad else (he - hs) * (we - ws))
    return y


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = np.split(gates, 4, axis=1)
    c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c2), c2
