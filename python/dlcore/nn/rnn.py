"""Recurrent layers as torch.nn: ``LSTM``, ``GRU``, ``RNN`` (multi-layer, bidirectional,
batch_first, dropout between layers, PackedSequence input) and ``GRUCell``, ``RNNCell``
(``LSTMCell`` is in layers.py). Parameter names, shapes, order and initialisation are PyTorch's,
so a state dict maps one to one.

Each layer and direction is one Function over the whole sequence (dlcore/ops/rnn.py): the input
projection of every step is one GEMM, the recurrence one kernel call, backward through time one
kernel call plus GEMMs for the weight gradients, not a Python loop over cells. The layers run
on the device of their input and parameters (CPU or CUDA); batch_sizes and the sort indices of
a PackedSequence are host metadata."""
import math

import numpy as np

from dlcore import ops
from dlcore.nn import init
from dlcore.nn.layers import _empty, _positive
from dlcore.nn.module import Module
from dlcore.nn.utils.rnn import PackedSequence
from dlcore.ops import _util
from dlcore.ops.rnn import GruLayer, LstmLayer, RnnLayer
from dlcore.tensor import Tensor

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _host_int64(t):
    """An int64 metadata Tensor (batch_sizes) as a host NumPy array, wherever it lives."""
    a = t._data
    return (a if type(a) is np.ndarray else a.get()).astype(np.int64)


def _stack_states(states):
    """(L * D, B, H) from the layer-directions' final states, each a fresh kernel output: one
    of them is only viewed as (1, B, H) (stack would copy it)."""
    return ops.unsqueeze(states[0], 0) if len(states) == 1 else ops.stack(states)


class RNNBase(Module):
    """The shared machinery of LSTM, GRU and RNN; ``mode`` is 'LSTM', 'GRU', 'RNN_TANH' or
    'RNN_RELU'. Parameters per layer k and direction (suffix '' or '_reverse'):
    weight_ih_l{k} (G*H, I_k), weight_hh_l{k} (G*H, H), bias_ih_l{k}, bias_hh_l{k} (G*H,),
    all U(-1/sqrt(H), 1/sqrt(H)); I_0 = input_size, I_k = H * num_directions."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=None):
        super().__init__()
        name = mode if mode in ("LSTM", "GRU") else "RNN"
        self.mode = mode
        self.input_size = _positive(name, "input_size", input_size)
        self.hidden_size = _positive(name, "hidden_size", hidden_size)
        self.num_layers = _positive(name, "num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a probability in [0, 1], got {dropout!r}")
        if proj_size:
            raise ValueError(f"{name}: proj_size is not supported (got {proj_size}); use a Linear after the layer")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size = bool(bidirectional), 0
        gate_size = _GATES[mode] * self.hidden_size
        directions = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, self.hidden_size))]
                if self.bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for kind, shape in shapes:
                    setattr(self, f"{kind}_l{layer}{suffix}", _empty(shape, dtype))
        self.reset_parameters()

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self):
        """Kept for code written for torch: W_hh is packed per call here, so nothing to do."""

    def _weights(self, layer, direction):
        suffix = "_reverse" if direction else ""
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        ws = [getattr(self, f"{n}_l{layer}{suffix}") for n in names]
        return ws if self.bias else ws + [None, None]

    # ---- input and state handling ----------------------------------------------------------
    def _name(self):
        return type(self).__name__

    def _as_packed(self, x):
        """(data (total, I), batch_sizes, sorted_indices, unsorted_indices, unbatched)."""
        if isinstance(x, PackedSequence):
            return x.data, _host_int64(x.batch_sizes), x.sorted_indices, x.unsorted_indices, False
        if not isinstance(x, Tensor):
            raise TypeError(f"{self._name()}: input must be a Tensor or a PackedSequence, got {type(x).__name__}")
        if x.ndim not in (2, 3):
            raise ValueError(f"{self._name()}: input must be 3-D ({'B, T' if self.batch_first else 'T, B'}, "
                             f"input_size) or 2-D (T, input_size), got shape {x.shape}")
        unbatched = x.ndim == 2
        if unbatched:
            x = ops.unsqueeze(x, 1)
        elif self.batch_first:
            x = ops.transpose(x, 0, 1)
        T, B, features = x.shape
        if T == 0 or B == 0:
            raise ValueError(f"{self._name()}: input has an empty time or batch dimension (shape {x.shape})")
        if features != self.input_size:
            raise ValueError(f"{self._name()}: input has {features} features, expected input_size={self.input_size}")
        return ops.reshape(ops.contiguous(x), (T * B, features)), np.full(T, B, np.int64), None, None, unbatched

    def _initial_state(self, hx, batch, data, unbatched, sorted_indices, what="hx"):
        """A list of L * D initial states (B, H), one per layer-direction, in the packed (sorted)
        batch order on the device of the packed input `data`; zeros when None (each its own
        array: no (L * D, B, H) tensor to index, two Function calls fewer per forward)."""
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        dtype = data._data.dtype
        if hx is None:
            return [Tensor(_util.zeros(shape[1:], dtype, data._data)) for _ in range(shape[0])]
        if not isinstance(hx, Tensor):
            raise TypeError(f"{self._name()}: {what} must be a Tensor, got {type(hx).__name__}")
        if hx.device != data.device:
            raise RuntimeError(f"{self._name()}: {what} is on {hx.device} but the input is on {data.device}")
        if unbatched:
            if hx.ndim != 2:
                raise ValueError(f"{self._name()}: for an unbatched input {what} must be 2-D "
                                 f"(num_layers * num_directions, H), got shape {hx.shape}")
            hx = ops.unsqueeze(hx, 1)
        if hx.shape != shape:
            raise ValueError(f"{self._name()}: expected {what} of shape {shape}, got {hx.shape}")
        if hx._data.dtype != dtype:
            raise TypeError(f"{self._name()}: {what} has dtype {hx._data.dtype} but the input has {dtype}")
        if sorted_indices is not None:
            hx = ops.getitem(hx, (slice(None), sorted_indices._data))
        return [hx[k] for k in range(shape[0])]

    def _layer(self, x, h0, c0, weights, batch_sizes, reverse):
        """Runs one layer-direction Function: (y (total, H), h_n, c_n or None)."""
        if self.mode == "LSTM":
            return LstmLayer.apply(x, h0, c0, *weights, batch_sizes, reverse)
        if self.mode == "GRU":
            y, h_n = GruLayer.apply(x, h0, *weights, batch_sizes, reverse)
        else:
            act = "tanh" if self.mode == "RNN_TANH" else "relu"
            y, h_n = RnnLayer.apply(x, h0, *weights, batch_sizes, reverse, act)
        return y, h_n, None

    def forward(self, input, hx=None):  # noqa: A002
        data, batch_sizes, sorted_indices, unsorted_indices, unbatched = self._as_packed(input)
        dtype = self.weight_ih_l0._data.dtype
        if data._data.dtype != dtype:
            raise TypeError(f"{self._name()}: input has dtype {data._data.dtype} but the parameters have {dtype}")
        if data.device != self.weight_ih_l0.device:
            raise RuntimeError(f"{self._name()}: input is on {data.device} but the parameters are on "
                               f"{self.weight_ih_l0.device} (move the module with .to(device))")
        if data.ndim != 2 or data.shape[1] != self.input_size:
            raise ValueError(f"{self._name()}: packed data must be (total, input_size={self.input_size}), "
                             f"got shape {data.shape}")
        batch = int(batch_sizes[0])
        if self.mode == "LSTM":
            h_in, c_in = (None, None) if hx is None else hx
            h0 = self._initial_state(h_in, batch, data, unbatched, sorted_indices, "h0")
            c0 = self._initial_state(c_in, batch, data, unbatched, sorted_indices, "c0")
        else:
            h0 = self._initial_state(hx, batch, data, unbatched, sorted_indices)
            c0 = None
        h_n, c_n = [], []
        layer_input = data
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                y, h, c = self._layer(layer_input, h0[k], None if c0 is None else c0[k],
                                      self._weights(layer, direction), batch_sizes, bool(direction))
                outputs.append(y)
                h_n.append(h)
                c_n.append(c)
            layer_input = outputs[0] if len(outputs) == 1 else ops.cat(outputs, dim=1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = ops.dropout(layer_input, self.dropout, True)
        h_n = _stack_states(h_n)
        c_n = _stack_states(c_n) if self.mode == "LSTM" else None
        if unsorted_indices is not None:
            h_n = ops.getitem(h_n, (slice(None), unsorted_indices._data))
            c_n = None if c_n is None else ops.getitem(c_n, (slice(None), unsorted_indices._data))
        if isinstance(input, PackedSequence):
            output = PackedSequence(layer_input, input.batch_sizes, sorted_indices, unsorted_indices)
        else:
            T, B = batch_sizes.shape[0], batch
            output = ops.reshape(layer_input, (T, B, layer_input.shape[1]))
            if unbatched:
                output = ops.squeeze(output, 1)
                h_n = ops.squeeze(h_n, 1)
                c_n = None if c_n is None else ops.squeeze(c_n, 1)
            elif self.batch_first:
                output = ops.transpose(output, 0, 1)
        return output, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTM(RNNBase):
    """Multi-layer LSTM, as torch.nn.LSTM: forward(input, (h0, c0)=None) -> (output, (h_n, c_n)).
    Gate order (i, f, g, o)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, dtype)


class GRU(RNNBase):
    """Multi-layer GRU, as torch.nn.GRU: forward(input, h0=None) -> (output, h_n). Gates (r, z, n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, dtype)


class RNN(RNNBase):
    """Multi-layer Elman RNN, as torch.nn.RNN: h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, 0, dtype)
        self.nonlinearity = nonlinearity


class _CellBase(Module):
    """One step of a GRU or Elman RNN, run as a one-step sequence of the layer Functions."""

    def __init__(self, name, gates, input_size, hidden_size, bias, dtype):
        super().__init__()
        self.input_size = _positive(name, "input_size", input_size)
        self.hidden_size = _positive(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        self.weight_ih = _empty((gates * self.hidden_size, self.input_size), dtype)
        self.weight_hh = _empty((gates * self.hidden_size, self.hidden_size), dtype)
        if self.bias:
            self.bias_ih = _empty((gates * self.hidden_size,), dtype)
            self.bias_hh = _empty((gates * self.hidden_size,), dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, input, hx=None):  # noqa: A002
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            raise ValueError(f"{name}: input must be 2-D (B, input_size) or 1-D (input_size,), "
                             f"got {getattr(input, 'shape', type(input).__name__)}")
        unbatched = input.ndim == 1
        x = ops.unsqueeze(input, 0) if unbatched else input
        if x.shape[1] != self.input_size or x.shape[0] == 0:
            raise ValueError(f"{name}: input shape {input.shape} does not match input_size={self.input_size}")
        if hx is None:
            h = Tensor(_util.zeros((x.shape[0], self.hidden_size), self.weight_ih._data.dtype, x._data))
        else:
            h = ops.unsqueeze(hx, 0) if unbatched else hx
            if h.shape != (x.shape[0], self.hidden_size):
                raise ValueError(f"{name}: hx must be ({x.shape[0]}, {self.hidden_size}), got {hx.shape}")
        weights = [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
        h_new = self._step(x, h, weights, np.array([x.shape[0]], np.int64))
        return ops.squeeze(h_new, 0) if unbatched else h_new

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class GRUCell(_CellBase):
    """One GRU step, as torch.nn.GRUCell: forward(x, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__("GRUCell", 3, input_size, hidden_size, bias, dtype)

    def _step(self, x, h, weights, batch_sizes):
        return GruLayer.apply(x, h, *weights, batch_sizes, False)[1]


class RNNCell(_CellBase):
    """One Elman RNN step, as torch.nn.RNNCell: forward(x, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNNCell", 1, input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def _step(self, x, h, weights, batch_sizes):
        return RnnLayer.apply(x, h, *weights, batch_sizes, False, self.nonlinearity)[1]
