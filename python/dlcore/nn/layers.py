"""The layers: thin Modules holding Parameters, whose forward calls one functional op from
dlcore.ops (and so the C++ kernels). Constructor arguments, default initialisation and
repr follow torch.nn."""
import math

import numpy as np

from dlcore import creation, dtypes, ops
from dlcore.nn import init
from dlcore.nn.module import Module, Parameter
from dlcore.ops.conv import conv2d_relu


def _empty(shape, dtype):
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.float32
    if dt not in dtypes.FLOATS:
        raise TypeError(f"parameters must be float32 or float64, got dtype {dt}")
    return Parameter(np.empty(shape, dtype=dt))


def _positive(layer, name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def _pair(layer, name, v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, (int, np.integer)) for i in v):
        return (int(v[0]), int(v[1]))
    raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {v!r}")


# ---- affine layers -----------------------------------------------------------------------
class Linear(Module):
    """y = x W^T + b; weight (out_features, in_features), bias (out_features,). Both start
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as in torch."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = _positive("Linear", "in_features", in_features)
        self.out_features = _positive("Linear", "out_features", out_features)
        self.weight = _empty((self.out_features, self.in_features), dtype)
        if bias:
            self.bias = _empty((self.out_features,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Conv2d(Module):
    """2-D convolution over (N, C, H, W): weight (C_out, C_in/groups, KH, KW), bias (C_out,);
    both start U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in/groups * KH * KW."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        self.in_channels = _positive("Conv2d", "in_channels", in_channels)
        self.out_channels = _positive("Conv2d", "out_channels", out_channels)
        self.groups = _positive("Conv2d", "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible "
                f"by groups ({groups})"
            )
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.kernel_size = _pair("Conv2d", "kernel_size", kernel_size)
        self.stride = _pair("Conv2d", "stride", stride)
        self.dilation = _pair("Conv2d", "dilation", dilation)
        if min(self.kernel_size + self.stride + self.dilation) <= 0:
            raise ValueError(f"Conv2d: kernel_size, stride and dilation must be positive, got "
                             f"{self.kernel_size}, {self.stride}, {self.dilation}")
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if self.stride != (1, 1):
                raise ValueError("Conv2d: padding='same' needs stride 1")
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            if any(t % 2 for t in total):
                raise ValueError(
                    f"Conv2d: padding='same' with kernel_size {self.kernel_size} and dilation {self.dilation} "
                    "needs asymmetric padding, which is not supported"
                )
            padding = (total[0] // 2, total[1] // 2)
        self.padding = _pair("Conv2d", "padding", padding)
        if min(self.padding) < 0:
            raise ValueError(f"Conv2d: padding must be non-negative, got {self.padding}")
        self.weight = _empty((self.out_channels, self.in_channels // self.groups) + self.kernel_size, dtype)
        if bias:
            self.bias = _empty((self.out_channels,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def forward_relu(self, x):
        """relu(self(x)) in one convolution pass (what nn.Sequential runs for Conv2d, ReLU)."""
        return conv2d_relu(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


# ---- pooling -----------------------------------------------------------------------------
class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, x):
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                              self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


# ---- activations and shape -----------------------------------------------------------------
class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace  # accepted for compatibility; dlcore always returns a new tensor

    def forward(self, x):
        return ops.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return ops.softmax(x, _softmax_dim(self.dim, x))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return ops.log_softmax(x, _softmax_dim(self.dim, x))


def _softmax_dim(dim, x):
    if dim is not None:
        return dim
    return 0 if x.ndim in (0, 1, 3) else 1  # torch's legacy implicit choice


class Dropout(Module):
    """Zeroes elements with probability p in training mode (scaling the rest by 1/(1-p));
    identity in eval mode."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.inplace = inplace

    def forward(self, x):
        return ops.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return ops.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# ---- embedding and recurrent -------------------------------------------------------------
class Embedding(Module):
    """A lookup table (num_embeddings, embedding_dim) initialised N(0, 1); the padding_idx
    row starts at zero and receives no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        self.num_embeddings = _positive("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                                 f"({num_embeddings})")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        self.weight = _empty((self.num_embeddings, self.embedding_dim), dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    def forward(self, x):
        return ops.embedding(x, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s


class LSTMCell(Module):
    """One LSTM step, gate order (i, f, g, o): weight_ih (4H, I), weight_hh (4H, H), biases
    (4H,), all initialised U(-1/sqrt(H), 1/sqrt(H)). forward(x, (h, c)) -> (h', c'); hx
    defaults to zeros. x may be (B, I) or unbatched (I,)."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__()
        self.input_size = _positive("LSTMCell", "input_size", input_size)
        self.hidden_size = _positive("LSTMCell", "hidden_size", hidden_size)
        self.bias = bias
        h4 = 4 * self.hidden_size
        self.weight_ih = _empty((h4, self.input_size), dtype)
        self.weight_hh = _empty((h4, self.hidden_size), dtype)
        if bias:
            self.bias_ih = _empty((h4,), dtype)
            self.bias_hh = _empty((h4,), dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, x, hx=None):
        if x.ndim not in (1, 2):
            raise ValueError(f"LSTMCell: input must be 2-D (B, input_size) or 1-D (input_size,), got shape {x.shape}")
        unbatched = x.ndim == 1
        if unbatched:
            x = ops.unsqueeze(x, 0)
        if hx is None:
            shape, dt = (x.shape[0], self.hidden_size), self.weight_ih._data.dtype
            h, c = creation.zeros(shape, dtype=dt, device=x.device), creation.zeros(shape, dtype=dt, device=x.device)
        else:
            h, c = hx
            if unbatched:
                h, c = ops.unsqueeze(h, 0), ops.unsqueeze(c, 0)
        h, c = ops.lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if unbatched:
            h, c = ops.squeeze(h, 0), ops.squeeze(c, 0)
        return h, c

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s


# ---- losses ------------------------------------------------------------------------------
class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction


class CrossEntropyLoss(_Loss):
    """log_softmax + nll over logits (N, C) and class indices (N,)."""

    def __init__(self, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):  # noqa: A002
        return ops.cross_entropy(input, target, self.reduction, self.ignore_index)


class NLLLoss(_Loss):
    def __init__(self, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):  # noqa: A002
        return ops.nll_loss(input, target, self.reduction, self.ignore_index)


class MSELoss(_Loss):
    def forward(self, input, target):  # noqa: A002
        return ops.mse_loss(input, target, self.reduction)
