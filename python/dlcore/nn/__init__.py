"""Layers and containers, as torch.nn: ``Module``, ``Parameter``, ``Sequential``, the
layers in ``layers.py`` and the recurrent ones in ``rnn.py``; ``nn.init`` holds the initialisers and ``nn.functional`` the ops."""
from dlcore.nn import functional, init
from dlcore.nn.layers import (AvgPool2d, Conv2d, CrossEntropyLoss, Dropout, Embedding, Flatten, Identity,
                              Linear, LogSoftmax, LSTMCell, MaxPool2d, MSELoss, NLLLoss, ReLU, Sigmoid, Softmax,
                              Tanh)
from dlcore.nn.module import Module, ModuleList, Parameter, Sequential
from dlcore.nn import utils  # noqa: I001 (rnn.py imports utils.rnn)
from dlcore.nn.rnn import GRU, LSTM, RNN, GRUCell, RNNBase, RNNCell

__all__ = ["AvgPool2d", "Conv2d", "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "GRU", "GRUCell", "Identity",
           "LSTM", "LSTMCell", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleList", "NLLLoss",
           "Parameter", "RNN", "RNNBase", "RNNCell", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "functional",
           "init", "utils"]
