"""Layers and containers, as torch.nn: ``Module``, ``Parameter``, ``Sequential`` and the
layers in ``layers.py``; ``nn.init`` holds the initialisers and ``nn.functional`` the ops."""
from dlcore.nn import functional, init
from dlcore.nn.layers import (AvgPool2d, Conv2d, CrossEntropyLoss, Dropout, Embedding, Flatten, Identity,
                              Linear, LogSoftmax, LSTMCell, MaxPool2d, MSELoss, NLLLoss, ReLU, Sigmoid, Softmax,
                              Tanh)
from dlcore.nn.module import Module, ModuleList, Parameter, Sequential

__all__ = ["AvgPool2d", "Conv2d", "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "Identity", "LSTMCell",
           "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleList", "NLLLoss", "Parameter", "ReLU",
           "Sequential", "Sigmoid", "Softmax", "Tanh", "functional", "init"]
