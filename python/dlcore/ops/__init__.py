"""The differentiable ops: one Function per op, each calling one _C kernel per direction."""
from dlcore.ops import shape
from dlcore.ops.conv import conv2d
from dlcore.ops.elementwise import (abs, add, cast, clamp, div, eq, exp, ge, gt, le, log, lt, mul, ne, neg,
                                    pow, relu, sigmoid, sqrt, sub, tanh, where)
from dlcore.ops.linalg import linear, matmul
from dlcore.ops.nn import (cross_entropy, dropout, embedding, log_softmax, lstm_cell, mse_loss, nll_loss,
                           softmax)
from dlcore.ops.pool import avg_pool2d, max_pool2d
from dlcore.ops.reduce import argmax, max, mean, sum
from dlcore.ops.shape import (cat, chunk, clone, contiguous, expand, flatten, getitem, permute, reshape, split,
                              squeeze, stack, to_device, transpose, unsqueeze, view)

__all__ = ["abs", "add", "argmax", "avg_pool2d", "cast", "cat", "chunk", "clamp", "clone", "contiguous", "conv2d",
           "cross_entropy", "div", "dropout", "embedding", "eq", "exp", "expand", "flatten", "ge", "getitem", "gt",
           "le", "linear", "log", "log_softmax", "lstm_cell", "lt", "matmul", "max", "max_pool2d", "mean",
           "mse_loss", "mul", "ne", "neg", "nll_loss", "permute", "pow", "relu", "reshape", "shape", "sigmoid",
           "softmax", "split", "sqrt", "squeeze", "stack", "sub", "sum", "tanh", "to_device", "transpose", "unsqueeze", "view",
           "where"]
