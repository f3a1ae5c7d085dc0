"""dlcore: a small, fast deep-learning library. Hand-written C++ (and CUDA) kernels behind a
thin Python layer that owns the autograd graph."""
from dlcore import _native

_C = _native.load()
__version__ = _C.__version__

from dlcore import cuda  # noqa: E402
from dlcore.autograd import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: E402
from dlcore.creation import (arange, as_tensor, empty, from_numpy, full, full_like, ones, ones_like, rand,  # noqa: E402
                             rand_like, randint, randn, randn_like, randperm, tensor, zeros, zeros_like)
from dlcore.dtypes import bool_, device, double, float32, float64, int64, long  # noqa: E402
from dlcore.ops import (abs, add, argmax, avg_pool2d, cat, chunk, clamp, conv2d, cross_entropy, div,  # noqa: E402
                        dropout, embedding, eq, exp, flatten, ge, gt, le, linear, log, log_softmax, lstm_cell, lt,
                        matmul, max, max_pool2d, mean, mse_loss, mul, ne, neg, nll_loss, permute, pow, relu,
                        reshape, sigmoid, softmax, split, sqrt, squeeze, stack, sub, sum, tanh, transpose,
                        unsqueeze, where)
from dlcore.precision import get_matmul_precision, set_matmul_precision  # noqa: E402
from dlcore.random import manual_seed  # noqa: E402
from dlcore.tensor import Tensor  # noqa: E402
from dlcore.threads import get_num_threads, set_num_threads  # noqa: E402

float = float32  # noqa: A001
bool = bool_  # noqa: A001
from dlcore import data, datasets, host_memory, nn, optim  # noqa: E402,I001
from dlcore.checkpoint import load, save  # noqa: E402


def cpu_isa():
    """The ISA whose CPU kernels are active (generic, avx2 or avx512)."""
    return _C.cpu_isa()
