"""Bad input raises a clear ValueError/TypeError naming the op and the values; it never
crashes the process."""
import numpy as np
import pytest

import dlcore
import dlcore.nn.functional as F


def t(*shape, dtype=dlcore.float32):
    return dlcore.randn(*shape, dtype=dtype)


BAD = [
    ("conv2d_rank", lambda: F.conv2d(t(3, 32, 32)[0], t(6, 3, 5, 5)), ValueError, "conv2d"),
    ("conv2d_channels", lambda: F.conv2d(t(1, 3, 8, 8), t(6, 2, 3, 3)), ValueError, "conv2d"),
    ("conv2d_kernel_too_big", lambda: F.conv2d(t(1, 1, 3, 3), t(1, 1, 5, 5)), ValueError, "conv2d"),
    ("conv2d_dtype", lambda: F.conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3, dtype=dlcore.float64)), TypeError, "conv2d"),
    ("conv2d_stride_zero", lambda: F.conv2d(t(1, 1, 8, 8), t(1, 1, 3, 3), stride=0), ValueError, "conv2d"),
    ("matmul_inner", lambda: t(3, 4) @ t(5, 2), ValueError, r"matmul.*\(3, 4\).*\(5, 2\)"),
    ("matmul_0d", lambda: dlcore.matmul(t(), t(3)), ValueError, "matmul"),
    ("matmul_int", lambda: dlcore.matmul(dlcore.ones(2, 2, dtype=dlcore.int64), dlcore.ones(2, 2, dtype=dlcore.int64)),
     TypeError, "matmul"),
    ("add_shapes", lambda: t(3, 4) + t(5), ValueError, r"\(3, 4\).*\(5,\)"),
    ("cross_entropy_target_range", lambda: F.cross_entropy(t(4, 10), dlcore.tensor([1, 2, 12, 0])), ValueError,
     "cross_entropy.*12"),
    ("cross_entropy_target_dtype", lambda: F.cross_entropy(t(4, 10), t(4)), TypeError, "cross_entropy"),
    ("cross_entropy_shape", lambda: F.cross_entropy(t(4, 10), dlcore.tensor([1, 2])), ValueError, "cross_entropy"),
    ("embedding_range", lambda: F.embedding(dlcore.tensor([0, 9]), t(5, 3)), ValueError, "embedding"),
    ("embedding_index_dtype", lambda: F.embedding(t(2), t(5, 3)), TypeError, "embedding"),
    ("max_pool2d_rank", lambda: F.max_pool2d(t(8, 8), 2), ValueError, "max_pool2d"),
    ("max_pool2d_padding", lambda: F.max_pool2d(t(1, 1, 8, 8), 2, padding=2), ValueError, "max_pool2d"),
    ("avg_pool2d_kernel", lambda: F.avg_pool2d(t(1, 1, 3, 3), 5), ValueError, "avg_pool2d"),
    ("softmax_dim", lambda: F.softmax(t(2, 3), 2), IndexError, "softmax"),
    ("sum_dim", lambda: t(2, 3).sum(5), IndexError, "sum"),
    ("reshape", lambda: t(2, 3).reshape(4, 2), ValueError, "reshape"),
    ("view_non_contiguous", lambda: t(2, 3).T.view(6), RuntimeError, "view"),
    ("cat_shapes", lambda: dlcore.cat([t(2, 3), t(3, 3)], 1), ValueError, "cat"),
    ("stack_shapes", lambda: dlcore.stack([t(2, 3), t(3, 3)]), ValueError, "stack"),
    ("linear_shape", lambda: F.linear(t(4, 5), t(3, 6)), ValueError, "linear"),
    ("lstm_cell_shape", lambda: F.lstm_cell(t(2, 3), (t(2, 4), t(2, 4)), t(16, 3), t(16, 5)), ValueError, "lstm_cell"),
    ("mse_loss_shape", lambda: F.mse_loss(t(3), t(4)), ValueError, "mse_loss"),
    ("dropout_p", lambda: F.dropout(t(3), 1.5), ValueError, "dropout"),
    ("exp_int", lambda: dlcore.exp(dlcore.tensor([1, 2])), TypeError, "exp"),
    ("max_empty", lambda: dlcore.zeros(0, 3).max(0), ValueError, "max"),
    ("mean_empty", lambda: dlcore.zeros(0, 3).mean(0), ValueError, "mean"),
    ("cuda_missing_device", lambda: t(2).to("cuda:7"), RuntimeError, "cuda:7"),
    ("cuda_creation_missing_device", lambda: dlcore.zeros(2, device="cuda:7"), RuntimeError, "cuda:7"),
    ("bad_dtype", lambda: dlcore.zeros(2, dtype=np.int8), TypeError, "int8"),
    ("from_numpy_dtype", lambda: dlcore.from_numpy(np.zeros(3, dtype=np.uint16)), TypeError, "uint16"),
    ("requires_grad_int", lambda: dlcore.tensor([1, 2], requires_grad=True), TypeError, "float"),
    ("getitem_range", lambda: t(2, 3)[5], IndexError, "getitem"),
]


@pytest.mark.parametrize("make,error,match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_a_clear_error(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_empty_tensors_flow_through_elementwise_and_matmul():
    e = dlcore.zeros(0, 4)
    assert (e + 1.0).shape == (0, 4)
    assert dlcore.relu(e).shape == (0, 4)
    assert (e @ dlcore.zeros(4, 3)).shape == (0, 3)
    assert e.sum().item() == 0.0
    assert (dlcore.zeros(3, 0) @ dlcore.zeros(0, 2)).numpy().tolist() == [[0.0, 0.0]] * 3


def test_nan_propagates_instead_of_crashing():
    x = dlcore.tensor([1.0, float("nan"), 3.0])
    assert np.isnan((x * 2.0).numpy()[1])
    assert np.isnan(dlcore.softmax(x, 0).numpy()).all()
    loss = F.cross_entropy(dlcore.tensor([[float("nan"), 1.0]]), dlcore.tensor([0]))
    assert np.isnan(loss.item())


def test_huge_sizes_raise_instead_of_crashing():
    with pytest.raises(MemoryError):
        dlcore.zeros(2**40, 2**10)
    with pytest.raises(ValueError, match="conv2d"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), padding=2**40)
    with pytest.raises((ValueError, MemoryError)):
        F.max_pool2d(t(1, 1, 4, 4), 2, padding=1, dilation=2**40)
