"""Type stub for dlcore._C, the native kernels (private: use the dlcore package).

Every op function validates its arguments (TypeError / ValueError naming the op), calls the
kernel of the active ISA and returns new NumPy arrays. See csrc/core/kernel_list.h for the
kernel contracts and csrc/bindings/ for the argument checks.
"""

from collections.abc import Sequence
from enum import Enum

import numpy as np

__version__: str

class UnaryOp(Enum):
    neg = 0
    exp = 1
    log = 2
    sqrt = 3
    abs = 4
    relu = 5
    tanh = 6
    sigmoid = 7
    clamp = 8
    pow_scalar = 9

class BinaryOp(Enum):
    add = 0
    sub = 1
    mul = 2
    div = 3
    pow = 4
    maximum = 5
    minimum = 6

class CompareOp(Enum):
    eq = 0
    ne = 1
    lt = 2
    le = 3
    gt = 4
    ge = 5

class ReduceOp(Enum):
    sum = 0
    max = 1

class _Cuda:
    """The `cuda` submodule: build and device status."""
    @staticmethod
    def is_built() -> bool: ...
    @staticmethod
    def device_count() -> int: ...
    @staticmethod
    def device_name(device: int) -> str: ...
    @staticmethod
    def fill_check(n: int, value: float) -> float: ...

cuda: _Cuda

class PackedB:
    """op(B) (K, N) packed once by gemm_pack_b into the panel layout of the ISA that was active then; pass it to gemm_packed (same ISA and dtype) as many times as needed."""

    @property
    def K(self) -> int:
        """Rows of op(B) (the inner dimension)."""
    @property
    def N(self) -> int:
        """Columns of op(B) (of the result)."""
    @property
    def dtype(self) -> np.dtype:
        """Element type, float32 or float64."""
    @property
    def isa(self) -> str:
        """The ISA whose kernels packed it (and alone can read it)."""
    @property
    def nbytes(self) -> int:
        """Bytes of packed storage (panels zero-padded to NR)."""

def adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    lr: float,
    step_size: float,
    bias_correction2_sqrt: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    decoupled: bool,
) -> None:
    """One Adam (AdamW when decoupled) step in place (torch.optim.Adam's math): step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t); max_exp_avg_sq is the amsgrad state, or None without amsgrad."""

def avg_pool2d_backward(
    grad_y: np.ndarray,
    x_shape: Sequence[int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """grad_x: each grad_y spread evenly over its window."""

def avg_pool2d_forward(
    x: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """y: mean over each window, divisor as PyTorch's avg_pool2d."""

def best_cpu_isa() -> str:
    """The highest ISA this CPU supports."""

def binary_forward(op: BinaryOp, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a (op) b with NumPy broadcasting; any non-negative strides; out C-contiguous."""

def compare_forward(op: CompareOp, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool out = a (cmp) b with NumPy broadcasting."""

def compiled_isas() -> list[str]: ...
def conv2d_backward_input(
    w: np.ndarray,
    grad_y: np.ndarray,
    x_shape: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    algo: str = "auto",
) -> np.ndarray:
    """grad_x (x_shape) of conv2d from w and grad_y (N, C_out, OH, OW); algo as in conv2d_forward."""

def conv2d_backward_weight(
    x: np.ndarray,
    grad_y: np.ndarray,
    w_shape: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    bias: bool,
    algo: str = "auto",
) -> tuple[np.ndarray, np.ndarray | None]:
    """(grad_w (w_shape), grad_bias (C_out,) or None when bias is False) of conv2d from x and grad_y; algo as in conv2d_forward."""

def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    algo: str = "auto",
    relu: bool = False,
) -> np.ndarray:
    """y (N, C_out, OH, OW) := conv2d(x (N, C, H, W), w (C_out, C/groups, KH, KW)) + bias (C_out,) or None, then max(y, 0) in the same pass when relu (NaN stays NaN). stride, padding, dilation are (h, w) tuples. algo: 'auto' (the measured rule) or 'gemm', 'direct', 'winograd' to force one (ValueError where it cannot run)."""

def cpu_brand() -> str: ...
def cpu_isa() -> str:
    """"""

def cross_entropy_backward(
    logits: np.ndarray, target: np.ndarray, lse: np.ndarray, grad_loss: np.ndarray, ignore_index: int = -100
) -> np.ndarray:
    """grad_logits (N, C) = grad_loss[n] * (softmax(logits)[n] - onehot(target[n])); 0 for ignored rows."""

def cross_entropy_forward(
    logits: np.ndarray, target: np.ndarray, ignore_index: int = -100
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row cross entropy of logits (N, C) and int64 target (N,): returns (loss (N,), lse (N,)); rows with target == ignore_index get loss 0."""

def dropout_backward(keep: np.ndarray, grad_y: np.ndarray, scale: float) -> np.ndarray:
    """grad_x = keep ? grad_y * scale : 0."""

def dropout_forward(x: np.ndarray, p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverted dropout: returns (y, keep); keep[i] = u(seed, i) >= p, y = keep ? x / (1 - p) : 0. The mask depends only on (seed, i), never on the thread count."""

def embedding_backward(
    index: np.ndarray, grad_out: np.ndarray, num: int, padding_idx: int = -1
) -> np.ndarray:
    """grad_weight (num, D): rows accumulate grad_out over repeated indices (deterministic); row padding_idx (if >= 0) stays zero."""

def embedding_forward(weight: np.ndarray, index: np.ndarray) -> np.ndarray:
    """out[..., :] = weight[index[...], :]; out has shape index.shape + (D,)."""

def gemm(
    A: np.ndarray,
    B: np.ndarray,
    C: np.ndarray | None = None,
    trans_a: bool = False,
    trans_b: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
    bias: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    """C := alpha * op(A) @ op(B) + beta * C for 2-D or batched 3-D float arrays, then the fused epilogue C += bias (N,) per column and C = max(C, 0) if relu; returns C."""

def gemm_pack_b(B: np.ndarray, trans_b: bool = False) -> PackedB:
    """Packs op(B) (K, N) of a 2-D float array B ((K, N), or (N, K) with trans_b) once for gemm_packed, in the active ISA's panel layout; returns a PackedB."""

def gemm_packed(
    A: np.ndarray,
    packed: PackedB,
    C: np.ndarray | None = None,
    trans_a: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
    bias: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    """C := alpha * op(A) @ B + beta * C for a 2-D A ((M, K), or (K, M) with trans_a) and B packed by gemm_pack_b under the same ISA, then the fused epilogue C += bias (N,) and C = max(C, 0) if relu; returns C (M, N). Raises ValueError if the active ISA is not the one that packed B (re-pack it), TypeError if A's dtype differs from the packed one."""

def gemm_packed_size(K: int, N: int, dtype: np.dtype | type | str) -> int:
    """Elements the active ISA's gemm_pack_b uses for a (K, N) op(B) of this dtype (N rounded up to whole register-tile panels)."""

def get_num_threads() -> int: ...
def gru_sequence_backward(
    w_hh: np.ndarray,
    h0: np.ndarray,
    gates: np.ndarray,
    hidden: np.ndarray,
    y: np.ndarray,
    batch_sizes: np.ndarray,
    reverse: bool,
    grad_y: np.ndarray | None,
    grad_h_n: np.ndarray | None,
    need_grad_h0: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """GRU backward through time. Returns (grad_gates_x, grad_gates_h, grad_h0); grad_h0 is None (and not computed) without need_grad_h0."""

def gru_sequence_forward(
    gates: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    h0: np.ndarray,
    batch_sizes: np.ndarray,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GRU layer over a packed sequence, one direction; gates (total, 3H) = x W_ih^T + b_ih is overwritten with the activated (r, z, n). Returns (hidden, y, h_n)."""

def host_cache_release() -> int:
    """Frees every cached host block; returns the bytes freed."""

def host_empty(shape: Sequence[int], dtype: np.dtype | type | str) -> np.ndarray:
    """An uninitialised C-contiguous float32/float64 array whose memory, from 64 KiB on, comes from the host cache (for large buffers the Python layer hands to kernels)."""

def host_cache_stats() -> dict[str, int]:
    """The host cache's counters (csrc/core/host_cache.h)."""

def isa_supported(name: str) -> bool: ...
def kernel_slots() -> list[str]:
    """"""

def lstm_cell_backward(
    gates: np.ndarray,
    c_prev: np.ndarray,
    c: np.ndarray,
    grad_h: np.ndarray | None = None,
    grad_c: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (grad_gates_pre (B, 4H), grad_c_prev (B, H)); grad_h / grad_c may be None (zeros)."""

def lstm_cell_forward(gates_pre: np.ndarray, c_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LSTM cell pointwise part, gate order (i, f, g, o): returns (h, c, gates) with gates the activated gates (B, 4H)."""

def lstm_sequence_forward(
    gates: np.ndarray,
    w_hh: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    batch_sizes: np.ndarray,
    reverse: bool = False,
    x: np.ndarray | None = None,
    w_ih: np.ndarray | None = None,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LSTM layer over a packed sequence, one direction; gates (total, 4H) = x W_ih^T + b_ih + b_hh is overwritten with the activated gates. Given x (total, I) and w_ih (4H, I) (and bias (4H)), the kernel makes that projection itself and gates is only written. Returns (y, c_all, h_n, c_n)."""

def lstm_sequence_backward(
    w_hh: np.ndarray,
    gates: np.ndarray,
    c_all: np.ndarray,
    c0: np.ndarray,
    batch_sizes: np.ndarray,
    reverse: bool,
    grad_y: np.ndarray | None,
    grad_h_n: np.ndarray | None,
    grad_c_n: np.ndarray | None,
    need_grad_h0: bool = True,
    w_ih: np.ndarray | None = None,
    grad_x_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """LSTM backward through time. Returns (grad_gates, grad_h0, grad_c0, grad_bias), grad_bias
    (4H) = grad_gates summed over its rows; grad_h0 is None (and not computed) without need_grad_h0.
    With w_ih (4H, I), grad_x_out (total, I) := grad_gates w_ih too."""

def max_pool2d_backward(
    index: np.ndarray,
    grad_y: np.ndarray,
    x_shape: Sequence[int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
) -> np.ndarray:
    """grad_x: grad_y added at the index positions (int64 plane or uint8 window index)."""

def max_pool2d_forward(
    x: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
    index: str = "plane",
) -> tuple[np.ndarray, np.ndarray | None]:
    """(y, index): max over each window; index "plane": int64 h*W + w of the max in its plane;
    "window": uint8 kh*KW + kw in its window (int64 plane where KH*KW > 255); "none": None."""

def nll_loss_backward(
    target: np.ndarray, grad_loss: np.ndarray, C: int, ignore_index: int = -100
) -> np.ndarray:
    """grad_logp (N, C): zero except -grad_loss[n] at (n, target[n]) for non-ignored rows."""

def nll_loss_forward(logp: np.ndarray, target: np.ndarray, ignore_index: int = -100) -> np.ndarray:
    """Per-row loss (N,) = -logp[n, target[n]]; 0 for ignored rows."""

def reduce_forward(op: ReduceOp, x: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(out, index): reduce the adjacent dims [start, end) of C-contiguous x; out has shape x.shape[:start] + x.shape[end:]. index (int64, same shape) is the first max's position in the flattened reduced block for ReduceOp.max, None for sum."""

def reduce_max_backward(
    index: np.ndarray, grad_out: np.ndarray, x_shape: Sequence[int], start: int, end: int
) -> np.ndarray:
    """grad_x of shape x_shape: zeros except grad_out at the argmax positions."""

def rnn_sequence_backward(
    w_hh: np.ndarray,
    h0: np.ndarray,
    y: np.ndarray,
    batch_sizes: np.ndarray,
    reverse: bool,
    nonlinearity: str,
    grad_y: np.ndarray | None,
    grad_h_n: np.ndarray | None,
    need_grad_h0: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Elman RNN backward through time. Returns (grad_pre, grad_h0); grad_h0 is None (and not computed) without need_grad_h0."""

def rnn_sequence_forward(
    y: np.ndarray,
    w_hh: np.ndarray,
    h0: np.ndarray,
    batch_sizes: np.ndarray,
    reverse: bool = False,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, np.ndarray]:
    """Elman RNN layer over a packed sequence, one direction; y (total, H) = x W_ih^T + b_ih + b_hh is overwritten with h. Returns (y, h_n)."""

def rnn_weight_grads(
    grad_gates: np.ndarray, x: np.ndarray, y: np.ndarray, h0: np.ndarray, reverse: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Weight gradients of one RNN layer and direction over a padded batch: (grad_gates^T x, grad_gates^T h_prev), h_prev each row's previous state (h0, or y one step earlier; later when reverse), as one GEMM that reads grad_gates once."""

def sgd_step(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first: bool,
) -> None:
    """One SGD step in place (torch.optim.SGD's math): d = (-grad if maximize else grad) + weight_decay * param; with momentum, momentum_buffer := d on the first step (first=True), else momentum * buf + (1 - dampening) * d, and d = d + momentum * buf if nesterov else buf; param -= lr * d. momentum_buffer is None without momentum."""

def set_cpu_isa(name: str) -> None:
    """Switch the active ISA (only to one the CPU supports)."""

def set_num_threads(n: int) -> None: ...
def softmax_backward(y: np.ndarray, grad_y: np.ndarray, dim: int, log: bool) -> np.ndarray:
    """"""

def softmax_forward(x: np.ndarray, dim: int, log: bool) -> np.ndarray:
    """softmax (log=False) or log_softmax (log=True) of C-contiguous x over dim (0 <= dim < ndim)."""

def unary_backward(
    op: UnaryOp,
    x: np.ndarray | None,
    y: np.ndarray | None,
    grad_y: np.ndarray,
    alpha: float = 0.0,
    beta: float = 0.0,
) -> np.ndarray:
    """grad_x = grad_y * f'(x). exp, tanh, sigmoid, sqrt read y; neg reads neither; the others read x. The one not read may be None."""

def unary_forward(op: UnaryOp, x: np.ndarray, alpha: float = 0.0, beta: float = 0.0) -> np.ndarray:
    """y = f(x) elementwise; x C-contiguous float32/float64 of any shape."""

def where_forward(cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = cond ? a : b with NumPy broadcasting over all three."""
