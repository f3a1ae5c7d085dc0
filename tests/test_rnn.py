"""nn.LSTM / GRU / RNN / GRUCell / RNNCell: finite-difference gradients through whole
sequences (padded and packed), equality with the cell-by-cell composition of lstm_cell,
PyTorch's parameter layout, and side by side with torch.nn where torch is installed."""
import numpy as np
import pytest

import dlcore
from dlcore import nn
from dlcore.gradcheck import gradcheck
from dlcore.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from helpers import assert_close

F64 = dlcore.float64
MODES = [("LSTM", {}), ("GRU", {}), ("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"})]


def leaf(rng, *shape):
    return dlcore.tensor(rng.standard_normal(shape), dtype=F64, requires_grad=True)


def make(mode, kw, *args, **more):
    return getattr(nn, mode)(*args, dtype=F64, **kw, **more)


def first(out):
    """The output tensor and the final state(s) as a flat tuple."""
    y, state = out
    return (y, *state) if isinstance(state, tuple) else (y, state)


# ---- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,kw", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_gradcheck(rng, mode, kw, bidirectional):
    """Two layers, given initial state: d(output, h_n[, c_n]) w.r.t. input, state and weights."""
    m = make(mode, kw, 3, 4, num_layers=2, bidirectional=bidirectional)
    D = 2 if bidirectional else 1
    x, h0 = leaf(rng, 5, 2, 3), leaf(rng, 2 * D, 2, 4)
    hx = (h0, leaf(rng, 2 * D, 2, 4)) if mode == "LSTM" else h0
    state = list(hx) if mode == "LSTM" else [hx]

    def fn(x, *rest):  # the parameters are perturbed in place, the module reads them itself
        return first(m(x, tuple(rest[:2]) if mode == "LSTM" else rest[0]))

    gradcheck(fn, [x, *state, *m.parameters()])


@pytest.mark.parametrize("mode,kw", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_gradcheck_without_initial_state(rng, mode, kw, bidirectional):
    """No initial state (zeros made by the layer, whose GEMMs the recurrence kernels skip, as
    they skip the one that would make grad_h0): d(output, final state) w.r.t. input and weights."""
    m = make(mode, kw, 3, 4, num_layers=2, bidirectional=bidirectional)
    gradcheck(lambda x, *params: first(m(x)), [leaf(rng, 5, 2, 3), *m.parameters()])


@pytest.mark.parametrize("mode,kw", MODES)
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_variable_length_gradcheck(rng, mode, kw, enforce_sorted):
    """Packed input of lengths 4, 3, 1 (or shuffled): gradients through pack -> layer -> pad."""
    lengths = [4, 3, 1] if enforce_sorted else [3, 1, 4]
    m = make(mode, kw, 2, 3, bidirectional=True)
    x = leaf(rng, 4, 3, 2)

    def fn(x):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
        out, state = m(packed)
        y, _ = pad_packed_sequence(out)
        return (y, *(state if isinstance(state, tuple) else (state,)))

    gradcheck(fn, [x])


def test_padding_never_reaches_packed_results(rng):
    """Changing the padded positions of a packed batch changes nothing."""
    lengths = [5, 2, 3]
    m = nn.LSTM(3, 4, dtype=F64)
    x = rng.standard_normal((5, 3, 3))
    y2 = x.copy()
    for b, n in enumerate(lengths):
        y2[n:, b] = 1e3
    a = m(pack_padded_sequence(dlcore.tensor(x), lengths, enforce_sorted=False))
    b_ = m(pack_padded_sequence(dlcore.tensor(y2), lengths, enforce_sorted=False))
    np.testing.assert_array_equal(a[0].data.detach().numpy(), b_[0].data.detach().numpy())
    np.testing.assert_array_equal(a[1][0].detach().numpy(), b_[1][0].detach().numpy())


def test_final_state_is_each_rows_last_step(rng):
    """h_n of a packed batch equals the output at each sequence's own last step."""
    lengths = [2, 5, 3]
    m = nn.GRU(3, 4, dtype=F64)
    x = dlcore.tensor(rng.standard_normal((5, 3, 3)))
    out, h_n = m(pack_padded_sequence(x, lengths, enforce_sorted=False))
    y, got_lengths = pad_packed_sequence(out)
    np.testing.assert_array_equal(got_lengths.detach().numpy(), lengths)
    for b, n in enumerate(lengths):
        assert_close(h_n.detach().numpy()[0, b], y.detach().numpy()[n - 1, b], atol=0, rtol=0, what=f"row {b}")
        assert np.all(y.detach().numpy()[n:, b] == 0)


# ---- equal to the step-by-step composition ---------------------------------------------------

def test_lstm_equals_lstm_cell_loop(rng):
    """The sequence kernel == a Python loop over dlcore.lstm_cell, forward and backward."""
    m = nn.LSTM(5, 7, dtype=F64)
    cell_w = [m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0]
    x_np, h_np, c_np = rng.standard_normal((6, 3, 5)), rng.standard_normal((1, 3, 7)), rng.standard_normal((1, 3, 7))
    x1, x2 = dlcore.tensor(x_np, requires_grad=True), dlcore.tensor(x_np, requires_grad=True)
    y, (h_n, c_n) = m(x1, (dlcore.tensor(h_np), dlcore.tensor(c_np)))
    (y.sum() + h_n.sum() * 2 + c_n.sum()).backward()
    grads_seq = [x1.grad.numpy()] + [w.grad.numpy().copy() for w in cell_w]
    m.zero_grad()
    h, c = dlcore.tensor(h_np[0]), dlcore.tensor(c_np[0])
    outs = []
    for t in range(6):
        h, c = dlcore.lstm_cell(x2[t], (h, c), *cell_w)
        outs.append(h)
    y_loop = dlcore.stack(outs)
    (y_loop.sum() + h.sum() * 2 + c.sum()).backward()
    assert_close(y.detach().numpy(), y_loop.detach().numpy(), atol=1e-13, rtol=1e-12, what="y")
    for name, a, b in zip(["x", "w_ih", "w_hh", "b_ih", "b_hh"], grads_seq, [x2.grad.numpy()] + [w.grad.numpy() for w in cell_w]):
        assert_close(a, b, atol=1e-12, rtol=1e-11, what=f"grad {name}")


@pytest.mark.parametrize("cell,nonlinearity", [("GRUCell", None), ("RNNCell", "tanh"), ("RNNCell", "relu")])
def test_cells_match_numpy(rng, cell, nonlinearity):
    kw = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
    m = getattr(nn, cell)(4, 3, dtype=F64, **kw)
    x, h = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    w_ih, w_hh, b_ih, b_hh = (p.detach().numpy() for p in (m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh))
    gx, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if cell == "GRUCell":
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        r, z = sig(gx[:, :3] + gh[:, :3]), sig(gx[:, 3:6] + gh[:, 3:6])
        n = np.tanh(gx[:, 6:] + r * gh[:, 6:])
        want = (1 - z) * n + z * h
    else:
        want = np.tanh(gx + gh) if nonlinearity == "tanh" else np.maximum(gx + gh, 0)
    got = m(dlcore.tensor(x), dlcore.tensor(h)).detach().numpy()
    assert_close(got, want, atol=1e-14, rtol=1e-13, what=cell)
    gradcheck(lambda x, h: m(x, h), [dlcore.tensor(x, requires_grad=True), dlcore.tensor(h, requires_grad=True)])
    assert m(dlcore.tensor(x[0])).shape == (3,)  # unbatched, zero state


# ---- layout and modes ------------------------------------------------------------------------

def test_parameter_names_and_shapes_follow_pytorch():
    m = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    names = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
    want = []
    for layer, inp in [(0, 10), (1, 40)]:
        for sfx in ["", "_reverse"]:
            want += [(f"weight_ih_l{layer}{sfx}", (80, inp)), (f"weight_hh_l{layer}{sfx}", (80, 20)),
                     (f"bias_ih_l{layer}{sfx}", (80,)), (f"bias_hh_l{layer}{sfx}", (80,))]
    assert names == want
    bound = 1 / np.sqrt(20)
    for _, p in m.named_parameters():
        assert np.abs(p.detach().numpy()).max() <= bound and p.detach().numpy().std() > bound / 3


def test_batch_first_and_unbatched_agree(rng):
    m = nn.GRU(3, 4, num_layers=2, dtype=F64)
    x = rng.standard_normal((5, 2, 3))
    y_tm, h_tm = m(dlcore.tensor(x))
    m.batch_first = True
    y_bf, h_bf = m(dlcore.tensor(x.transpose(1, 0, 2).copy()))
    assert_close(y_bf.detach().numpy().transpose(1, 0, 2), y_tm.detach().numpy(), atol=0, rtol=0, what="batch_first")
    assert_close(h_bf.detach().numpy(), h_tm.detach().numpy(), atol=0, rtol=0, what="h_n")
    m.batch_first = False
    y1, h1 = m(dlcore.tensor(x[:, 1]))
    assert y1.shape == (5, 4) and h1.shape == (2, 4)
    assert_close(y1.detach().numpy(), y_tm.detach().numpy()[:, 1], atol=1e-15, rtol=1e-14, what="unbatched")


def test_dropout_between_layers(rng):
    dlcore.manual_seed(0)
    m = nn.LSTM(3, 8, num_layers=2, dropout=0.5, dtype=F64)
    x = dlcore.tensor(rng.standard_normal((4, 2, 3)))
    m.eval()
    a, b = m(x)[0].detach().numpy(), m(x)[0].detach().numpy()
    np.testing.assert_array_equal(a, b)
    m.train()
    assert not np.allclose(m(x)[0].detach().numpy(), a)


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("input_size", [64, 128])  # W_ih, W_hh grads by one GEMM / by two
def test_weight_grads_of_wide_layers_match_finite_differences(rng, mode, input_size, with_state):
    """Both directions, from a random initial state (the reverse direction and h0 enter the
    recurrent weight's gradient through their own GEMMs) or from none (zeros: that GEMM and the
    kernels' GEMMs on h0 are skipped)."""
    m = make(mode, {}, input_size, 256, bidirectional=True)
    x = dlcore.tensor(rng.standard_normal((3, 2, input_size)))
    h0 = dlcore.tensor(rng.standard_normal((2, 2, 256)))
    state = (h0, dlcore.tensor(rng.standard_normal((2, 2, 256)))) if mode == "LSTM" else h0
    w_out = rng.standard_normal((3, 2, 512))

    def loss():
        return (m(x, state if with_state else None)[0] * dlcore.tensor(w_out)).sum()

    loss().backward()
    eps = 1e-6
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_hh_l0", "weight_hh_l0_reverse"):
        p = getattr(m, name)
        for index in zip(*(rng.integers(0, n, 3) for n in p.shape)):
            saved = p._data[index]
            p._data[index] = saved + eps
            up = loss().item()
            p._data[index] = saved - eps
            down = loss().item()
            p._data[index] = saved
            assert p.grad.numpy()[index] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-7), (name, index)


def test_float32_close_to_float64(rng):
    m64 = nn.LSTM(16, 32, num_layers=2, dtype=F64)
    m32 = nn.LSTM(16, 32, num_layers=2)
    m32.load_state_dict({k: dlcore.tensor(v.detach().numpy().astype(np.float32)) for k, v in m64.state_dict().items()})
    x = rng.standard_normal((30, 4, 16))
    y64 = m64(dlcore.tensor(x))[0].detach().numpy()
    y32 = m32(dlcore.tensor(x.astype(np.float32)))[0].detach().numpy()
    assert y32.dtype == np.float32
    assert_close(y32, y64, atol=1e-5, rtol=1e-4, what="float32 vs float64")


# ---- bad input -------------------------------------------------------------------------------

def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="LSTM: hidden_size must be a positive int, got 0"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="GRU: dropout must be a probability"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="proj_size is not supported"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        nn.RNN(3, 4, nonlinearity="gelu")
    m = nn.LSTM(3, 4, num_layers=2)
    x = dlcore.zeros((5, 2, 3))
    with pytest.raises(ValueError, match="input has 4 features, expected input_size=3"):
        m(dlcore.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match=r"expected h0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        m(x, (dlcore.zeros((1, 2, 4)), dlcore.zeros((2, 2, 4))))
    with pytest.raises(TypeError, match="input has dtype float64 but the parameters have float32"):
        m(dlcore.zeros((5, 2, 3), dtype=F64))
    with pytest.raises(ValueError, match="must be 3-D"):
        m(dlcore.zeros((5, 2, 3, 1)))
    with pytest.raises(ValueError, match="empty time or batch dimension"):
        m(dlcore.zeros((0, 2, 3)))


# ---- side by side with torch -----------------------------------------------------------------

@pytest.mark.parametrize("mode,kw", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_matches_torch(rng, mode, kw, bidirectional, batch_first):
    torch = pytest.importorskip("torch")
    tm = getattr(torch.nn, mode)(5, 6, num_layers=2, bidirectional=bidirectional, batch_first=batch_first,
                                 **kw).double()
    dm = make(mode, kw, 5, 6, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    dm.load_state_dict({k: dlcore.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = rng.standard_normal((3, 7, 5) if batch_first else (7, 3, 5))
    D = 2 if bidirectional else 1
    h0 = rng.standard_normal((2 * D, 3, 6))
    xt, xd = torch.tensor(x, requires_grad=True), dlcore.tensor(x, requires_grad=True)
    if mode == "LSTM":
        c0 = rng.standard_normal((2 * D, 3, 6))
        ot, (ht, ct) = tm(xt, (torch.tensor(h0), torch.tensor(c0)))
        od, (hd, cd) = dm(xd, (dlcore.tensor(h0), dlcore.tensor(c0)))
        pairs = [(ot, od), (ht, hd), (ct, cd)]
    else:
        ot, ht = tm(xt, torch.tensor(h0))
        od, hd = dm(xd, dlcore.tensor(h0))
        pairs = [(ot, od), (ht, hd)]
    weights = [rng.standard_normal(tuple(t.shape)) for t, _ in pairs]
    sum(((t * torch.tensor(w)).sum() for (t, _), w in zip(pairs, weights))).backward()
    sum(((d * dlcore.tensor(w)).sum() for (_, d), w in zip(pairs, weights))).backward()
    for (t, d), name in zip(pairs, ["output", "h_n", "c_n"]):
        assert_close(d.detach().numpy(), t.detach().numpy(), atol=1e-13, rtol=1e-12, what=name)
    assert_close(xd.grad.numpy(), xt.grad.numpy(), atol=1e-12, rtol=1e-11, what="grad input")
    params = dict(dm.named_parameters())
    for name, p in tm.named_parameters():
        assert_close(params[name].grad.numpy(), p.grad.numpy(), atol=1e-12, rtol=1e-11, what=f"grad {name}")


def test_packed_matches_torch(rng):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence as tpack
    from torch.nn.utils.rnn import pad_packed_sequence as tpad
    lengths = [3, 7, 1, 5]
    tm = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True).double()
    dm = nn.LSTM(4, 5, num_layers=2, bidirectional=True, dtype=F64)
    dm.load_state_dict({k: dlcore.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = rng.standard_normal((7, 4, 4))
    ot, (ht, ct) = tm(tpack(torch.tensor(x), lengths, enforce_sorted=False))
    od, (hd, cd) = dm(pack_padded_sequence(dlcore.tensor(x), lengths, enforce_sorted=False))
    assert_close(pad_packed_sequence(od)[0].detach().numpy(), tpad(ot)[0].detach().numpy(), atol=1e-13, rtol=1e-12,
                 what="output")
    assert_close(hd.detach().numpy(), ht.detach().numpy(), atol=1e-13, rtol=1e-12, what="h_n")
    assert_close(cd.detach().numpy(), ct.detach().numpy(), atol=1e-13, rtol=1e-12, what="c_n")
