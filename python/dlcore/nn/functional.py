"""The functional ops, as torch.nn.functional: the same Functions the layers call."""
from dlcore.ops import (avg_pool2d, conv2d, cross_entropy, dropout, embedding, flatten, linear, log_softmax,
                        lstm_cell, max_pool2d, mse_loss, nll_loss, relu, sigmoid, softmax, tanh)

__all__ = ["avg_pool2d", "conv2d", "cross_entropy", "dropout", "embedding", "flatten", "linear", "log_softmax",
           "lstm_cell", "max_pool2d", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax", "tanh"]
