"""Kernel tests for the recurrences over a packed sequence (csrc/cpu/rnn/ via
csrc/bindings/ops_rnn.cpp): _C.{lstm,gru,rnn}_sequence_{forward,backward} against a float64
NumPy oracle that runs each batch row's own sequence on its own (so it shares none of the packed
walk's bookkeeping), on every ISA, float32 and float64, padded and variable-length batches,
both directions; and _C.rnn_weight_grads against float64 products."""
import numpy as np
import pytest

from dlcore import _C
from helpers import assert_close, assert_close_reduction

DTYPES = [np.float32, np.float64]
GATES = {"lstm": 4, "gru": 3, "tanh": 1, "relu": 1}

# (lengths of the batch rows, sorted descending, H): batch 1, length 1, ragged, a model shape.
CASES = [
    ([1], 3),
    ([5], 1),
    ([3, 3, 3], 7),
    ([6, 4, 4, 1], 5),
    ([9, 7, 2, 2, 1], 17),
    ([35] * 4, 65),
    ([4] * 9 + [2] * 4, 33),  # 13 rows: two full 6-row tiles and an edge row; 16-unit blocks + 1
    ([6], 37),  # batch 1, few steps (W_hh read in place by the AVX-512 LSTM): unit blocks 16 + 16 + 5
    ([3], 150),  # batch 1, few steps: a 128-depth chunk of h in registers, then 22 more depths
    ([12], 40),  # batch 1, more steps: packed W_hh, walked backwards on odd steps
]


def tol(dtype, steps):
    """Errors compound through time: float32 gets a looser bound on long sequences."""
    return (2e-5 * steps**0.5, 2e-4 * steps**0.5) if dtype == np.float32 else (1e-11, 1e-10)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def packed_rows(lengths):
    """batch_sizes (T,) and rows[b] = the packed row of each of b's steps."""
    T = max(lengths)
    batch_sizes = np.array([sum(1 for n in lengths if n > t) for t in range(T)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    return batch_sizes, [offsets[:n] + b for b, n in enumerate(lengths)]


# ---- float64 oracles for one sequence, time-ordered as the direction runs it ------------------

def cell_forward(kind, pre_x, h, c, w_hh, b_hh):
    """One step: returns (h, c, saved) from the input projection pre_x and the state."""
    H = h.shape[0]
    if kind == "lstm":
        pre = pre_x + w_hh @ h
        i, f, g, o = sigmoid(pre[:H]), sigmoid(pre[H:2 * H]), np.tanh(pre[2 * H:3 * H]), sigmoid(pre[3 * H:])
        c = f * c + i * g
        return o * np.tanh(c), c, None
    if kind == "gru":
        hid = w_hh @ h + b_hh
        r = sigmoid(pre_x[:H] + hid[:H])
        z = sigmoid(pre_x[H:2 * H] + hid[H:2 * H])
        n = np.tanh(pre_x[2 * H:] + r * hid[2 * H:])
        return (1 - z) * n + z * h, c, hid
    pre = pre_x + w_hh @ h
    return (np.tanh(pre) if kind == "tanh" else np.maximum(pre, 0)), c, None


def sequence_loss_grads(kind, pre_x, h0, c0, w_hh, b_hh, gy, ghn, gcn):
    """Forward one sequence (L, G*H) and backward of L = sum(gy*y) + ghn.h_n + gcn.c_n by
    float64 finite-difference-free reverse mode: autograd written out per step with NumPy."""
    L, H = pre_x.shape[0], h0.shape[0]
    hs, cs, ys, hids = [h0], [c0], [], []
    for t in range(L):
        h, c, hid = cell_forward(kind, pre_x[t], hs[-1], cs[-1], w_hh, b_hh)
        hs.append(h), cs.append(c), ys.append(h), hids.append(hid)
    dh, dc = ghn.copy(), gcn.copy()
    d_pre_x = np.zeros_like(pre_x)
    d_hid = np.zeros_like(pre_x)
    for t in reversed(range(L)):
        dh = dh + gy[t]
        hp, cp, h, c = hs[t], cs[t], hs[t + 1], cs[t + 1]
        if kind == "lstm":
            pre = pre_x[t] + w_hh @ hp
            i, f, g, o = sigmoid(pre[:H]), sigmoid(pre[H:2 * H]), np.tanh(pre[2 * H:3 * H]), sigmoid(pre[3 * H:])
            tc = np.tanh(c)
            dct = dc + dh * o * (1 - tc**2)
            d = np.concatenate([dct * g * i * (1 - i), dct * cp * f * (1 - f), dct * i * (1 - g**2),
                                dh * tc * o * (1 - o)])
            d_pre_x[t] = d
            dh, dc = w_hh.T @ d, dct * f
        elif kind == "gru":
            hid = hids[t]
            r = sigmoid(pre_x[t, :H] + hid[:H])
            z = sigmoid(pre_x[t, H:2 * H] + hid[H:2 * H])
            n = np.tanh(pre_x[t, 2 * H:] + r * hid[2 * H:])
            dn = dh * (1 - z) * (1 - n**2)
            dz = dh * (hp - n) * z * (1 - z)
            dr = dn * hid[2 * H:] * r * (1 - r)
            d_pre_x[t] = np.concatenate([dr, dz, dn])
            d_hid[t] = np.concatenate([dr, dz, dn * r])
            dh = dh * z + w_hh.T @ d_hid[t]
        else:
            d = dh * ((1 - h**2) if kind == "tanh" else (h > 0))
            d_pre_x[t] = d
            dh = w_hh.T @ d
    return np.array(ys), hs[-1], cs[-1], np.array(hids) if kind == "gru" else None, d_pre_x, d_hid, dh, dc


def oracle(kind, lengths, reverse, pre_x, h0, c0, w_hh, b_hh, gy, ghn, gcn):
    """Packed-layout results assembled from per-row sequences (float64)."""
    _, rows = packed_rows(lengths)
    G, H = pre_x.shape[1], h0.shape[1]
    out = {k: np.zeros((pre_x.shape[0], w)) for k, w in [("y", H), ("hid", G), ("dx", G), ("dhid", G)]}
    out.update({k: np.zeros_like(h0) for k in ["h_n", "c_n", "dh0", "dc0"]})
    for b, r in enumerate(rows):
        order = r[::-1] if reverse else r
        y, hn, cn, hid, dx, dhid, dh0, dc0 = sequence_loss_grads(
            kind, pre_x[order], h0[b], c0[b], w_hh, b_hh, gy[order], ghn[b], gcn[b])
        out["y"][order], out["dx"][order], out["dhid"][order] = y, dx, dhid
        if hid is not None:
            out["hid"][order] = hid
        out["h_n"][b], out["c_n"][b], out["dh0"][b], out["dc0"][b] = hn, cn, dh0, dc0
    out["db"] = out["dx"].sum(0)  # the LSTM's bias gradient: its gate gradients summed over rows
    return out


def run_kernels(kind, lengths, reverse, dtype, pre_x, h0, c0, w_hh, b_hh, gy, ghn, gcn):
    """The kernel results under the oracle's names."""
    bs, _ = packed_rows(lengths)
    cast = [a.astype(dtype) for a in (pre_x, h0, c0, w_hh, b_hh, gy, ghn, gcn)]
    pre_x, h0, c0, w_hh, b_hh, gy, ghn, gcn = cast
    if kind == "lstm":
        gates = pre_x.copy()
        y, c_all, h_n, c_n = _C.lstm_sequence_forward(gates, w_hh, h0, c0, bs, reverse)
        dx, dh0, dc0, db = _C.lstm_sequence_backward(w_hh, gates, c_all, c0, bs, reverse, gy, ghn, gcn)
        return {"y": y, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0, "db": db}
    if kind == "gru":
        gates = pre_x.copy()
        hidden, y, h_n = _C.gru_sequence_forward(gates, w_hh, b_hh, h0, bs, reverse)
        dx, dhid, dh0 = _C.gru_sequence_backward(w_hh, h0, gates, hidden, y, bs, reverse, gy, ghn)
        return {"y": y, "h_n": h_n, "hid": hidden, "dx": dx, "dhid": dhid, "dh0": dh0}
    y = pre_x.copy()
    y_out, h_n = _C.rnn_sequence_forward(y, w_hh, h0, bs, reverse, kind)
    assert y_out is y or np.shares_memory(y_out, y), "rnn_sequence_forward must work in place"
    dx, dh0 = _C.rnn_sequence_backward(w_hh, h0, y, bs, reverse, kind, gy, ghn)
    return {"y": y, "h_n": h_n, "dx": dx, "dh0": dh0}


def random_problem(rng, kind, lengths, H):
    G = GATES[kind] * H
    total, B = sum(lengths), len(lengths)
    scale = 1.0 / np.sqrt(H)
    return (rng.standard_normal((total, G)), rng.standard_normal((B, H)), rng.standard_normal((B, H)),
            rng.uniform(-scale, scale, (G, H)) * 2, rng.standard_normal(G) * 0.3,
            rng.standard_normal((total, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", list(GATES))
@pytest.mark.parametrize("lengths,H", CASES)
def test_sequence_matches_per_row_oracle(isa, rng, kind, lengths, H, reverse, dtype):
    problem = random_problem(rng, kind, lengths, H)
    if kind != "lstm":  # c0 / grad_c_n are LSTM-only
        problem = problem[:2] + (np.zeros_like(problem[2]),) + problem[3:7] + (np.zeros_like(problem[7]),)
    if kind in ("tanh", "relu"):  # the Elman projection carries both biases
        problem = problem[:4] + (np.zeros_like(problem[4]),) + problem[5:]
    want = oracle(kind, lengths, reverse, *problem)
    got = run_kernels(kind, lengths, reverse, dtype, *problem)
    atol, rtol = tol(dtype, max(lengths))
    for name, value in got.items():
        assert value.dtype == dtype
        assert_close(value, want[name], atol=atol, rtol=rtol, what=f"{kind} {name}")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", list(GATES))
@pytest.mark.parametrize("lengths,H", [([7, 5, 5, 2, 1], 520), ([6] * 3 + [4] * 6 + [3, 2, 1, 1], 300), ([5], 300)],
                         ids=["units-split", "rows-split", "batch-1"])
def test_two_threads_match_oracle(isa, rng, kind, lengths, H, reverse):
    """Big enough for a team of two: a small batch splits the hidden units (H not a multiple of
    the tile width), a larger one the batch rows; ragged lengths in both."""
    problem = random_problem(rng, kind, lengths, H)
    want = oracle(kind, lengths, reverse, *problem)
    previous = _C.get_num_threads()
    _C.set_num_threads(2)
    try:
        got = run_kernels(kind, lengths, reverse, np.float64, *problem)
    finally:
        _C.set_num_threads(previous)
    for name, value in got.items():
        assert_close(value, want[name], atol=1e-11, rtol=1e-10, what=f"{kind} {name}")


def run_without_initial_state(kind, lengths, reverse, dtype, pre_x, c0, w_hh, b_hh, gy, ghn, gcn):
    """The kernels as a layer without h0 calls them: h0 all zeros (its GEMMs are skipped; the
    GRU's rows from h0 then take b_hh alone) and no grad_h0 wanted (need_grad_h0=False: None,
    and its GEMM skipped)."""
    bs, _ = packed_rows(lengths)
    pre_x, c0, w_hh, b_hh, gy, ghn, gcn = (a.astype(dtype) for a in (pre_x, c0, w_hh, b_hh, gy, ghn, gcn))
    h0 = np.zeros_like(c0)
    if kind == "lstm":
        gates = pre_x.copy()
        y, c_all, h_n, c_n = _C.lstm_sequence_forward(gates, w_hh, h0, c0, bs, reverse)
        dx, dh0, dc0, db = _C.lstm_sequence_backward(w_hh, gates, c_all, c0, bs, reverse, gy, ghn, gcn,
                                                     need_grad_h0=False)
        return dh0, {"y": y, "h_n": h_n, "c_n": c_n, "dx": dx, "dc0": dc0, "db": db}
    if kind == "gru":
        gates = pre_x.copy()
        hidden, y, h_n = _C.gru_sequence_forward(gates, w_hh, b_hh, h0, bs, reverse)
        dx, dhid, dh0 = _C.gru_sequence_backward(w_hh, h0, gates, hidden, y, bs, reverse, gy, ghn, need_grad_h0=False)
        return dh0, {"y": y, "h_n": h_n, "hid": hidden, "dx": dx, "dhid": dhid}
    y = pre_x.copy()
    _, h_n = _C.rnn_sequence_forward(y, w_hh, h0, bs, reverse, kind)
    dx, dh0 = _C.rnn_sequence_backward(w_hh, h0, y, bs, reverse, kind, gy, ghn, need_grad_h0=False)
    return dh0, {"y": y, "h_n": h_n, "dx": dx}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", list(GATES))
@pytest.mark.parametrize("lengths,H", CASES + [([7, 5, 5, 2, 1], 520), ([6] * 3 + [4] * 6 + [3, 2, 1, 1], 300)])
def test_zero_initial_state_skips_match_oracle(isa, rng, kind, lengths, H, reverse, dtype, threads):
    """h0 = 0 and grad_h0 not wanted: the rows that start from h0 skip their GEMMs (in the
    reverse direction of a ragged batch they start at different steps, some inside a register
    tile of carried rows); everything else still matches the oracle."""
    pre_x, _, c0, w_hh, b_hh, gy, ghn, gcn = random_problem(rng, kind, lengths, H)
    if kind != "lstm":
        c0, gcn = np.zeros_like(c0), np.zeros_like(gcn)
    if kind != "gru":  # only the GRU's kernels take b_hh
        b_hh = np.zeros_like(b_hh)
    want = oracle(kind, lengths, reverse, pre_x, np.zeros_like(c0), c0, w_hh, b_hh, gy, ghn, gcn)
    previous = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        dh0, got = run_without_initial_state(kind, lengths, reverse, dtype, pre_x, c0, w_hh, b_hh, gy, ghn, gcn)
    finally:
        _C.set_num_threads(previous)
    assert dh0 is None
    atol, rtol = tol(dtype, max(lengths))
    for name, value in got.items():
        assert_close(value, want[name], atol=atol, rtol=rtol, what=f"{kind} {name}")


@pytest.mark.parametrize("kind", list(GATES))
def test_absent_gradients_are_zero(rng, kind):
    """None for grad_y / grad_h_n (/ grad_c_n) means zero, not garbage."""
    lengths, H = [4, 3, 1], 6
    pre_x, h0, c0, w_hh, b_hh, _, _, _ = random_problem(rng, kind, lengths, H)
    bs, _ = packed_rows(lengths)
    gy = rng.standard_normal((sum(lengths), H))
    zero = np.zeros((len(lengths), H))
    if kind == "lstm":
        gates = pre_x.copy()
        _, c_all, _, _ = _C.lstm_sequence_forward(gates, w_hh, h0, c0, bs)
        got = _C.lstm_sequence_backward(w_hh, gates, c_all, c0, bs, False, gy, None, None)
        want = _C.lstm_sequence_backward(w_hh, gates, c_all, c0, bs, False, gy, zero, zero)
    elif kind == "gru":
        gates = pre_x.copy()
        hidden, y, _ = _C.gru_sequence_forward(gates, w_hh, b_hh, h0, bs)
        got = _C.gru_sequence_backward(w_hh, h0, gates, hidden, y, bs, False, None, zero + 1)
        want = _C.gru_sequence_backward(w_hh, h0, gates, hidden, y, bs, False, np.zeros_like(gy), zero + 1)
    else:
        y = pre_x.copy()
        _C.rnn_sequence_forward(y, w_hh, h0, bs, False, kind)
        got = _C.rnn_sequence_backward(w_hh, h0, y, bs, False, kind, gy, None)
        want = _C.rnn_sequence_backward(w_hh, h0, y, bs, False, kind, gy, zero)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_isas_and_thread_counts_agree(rng):
    """A PTB-sized LSTM step sequence: every ISA and 1 vs 2 threads within float32 tolerance."""
    lengths, H = [12] * 20, 650
    pre_x, h0, c0, w_hh, _, gy, ghn, gcn = (a.astype(np.float32) for a in random_problem(rng, "lstm", lengths, H))
    bs, _ = packed_rows(lengths)

    def run():
        gates = pre_x.copy()
        y, c_all, h_n, c_n = _C.lstm_sequence_forward(gates, w_hh, h0, c0, bs)
        dx, dh0, dc0, db = _C.lstm_sequence_backward(w_hh, gates, c_all, c0, bs, False, gy, ghn, gcn)
        return y, h_n, c_n, dx, dh0, dc0, db

    previous_isa, previous_threads = _C.cpu_isa(), _C.get_num_threads()
    results = []
    try:
        for name in ["generic", "avx2", "avx512"]:
            if not _C.isa_supported(name):
                continue
            _C.set_cpu_isa(name)
            for threads in (1, 2):
                _C.set_num_threads(threads)
                results.append((name, threads, run()))
    finally:
        _C.set_cpu_isa(previous_isa)
        _C.set_num_threads(previous_threads)
    ref = results[0][2]
    for name, threads, out in results[1:]:
        for a, b in zip(out, ref):
            assert_close(a, b, atol=1e-4, rtol=1e-3, what=f"{name} x{threads} threads vs {results[0][0]}")


# ---- the LSTM forward's input projection ------------------------------------------------------

# (lengths, H, I): from 32 rows the AVX-512 float tile makes the projection itself (ragged, I off
# the 16-unit block, a unit tail), fewer rows take one GEMM first; batch 1 reads W_hh in place.
PROJECTION_CASES = [([3] * 32, 64, 64), ([4] * 20 + [2] * 14, 40, 13), ([2] * 33, 17, 70), ([5] * 4, 64, 64),
                    ([7, 5, 5, 2, 1], 40, 13), ([3], 37, 20), ([12], 40, 3), ([2] * 32, 16, 0), ([3, 1], 8, 0)]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("h0_kind", ["random", "zeros"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths,H,I", PROJECTION_CASES)
def test_lstm_forward_makes_the_input_projection(isa, threads, rng, lengths, H, I, reverse, dtype, h0_kind, bias):
    """Given x, w_ih and bias, the forward equals the one fed x w_ih^T + bias (float64 products),
    and writes every element of gates."""
    pre_x, h0, c0, w_hh, _, _, _, _ = (a.astype(dtype) for a in random_problem(rng, "lstm", lengths, H))
    if h0_kind == "zeros":
        h0 = np.zeros_like(h0)
    x = rng.standard_normal((sum(lengths), I)).astype(dtype)
    w_ih = (rng.standard_normal((4 * H, I)) / np.sqrt(max(I, 1))).astype(dtype)
    b = rng.standard_normal(4 * H).astype(dtype) if bias else None
    bs, _ = packed_rows(lengths)
    pre = (x.astype(np.float64) @ w_ih.astype(np.float64).T + (b if bias else 0.0)).astype(dtype)
    fed = pre.copy()
    want = _C.lstm_sequence_forward(fed, w_hh, h0, c0, bs, reverse)
    made = np.full_like(pre, np.nan)
    got = _C.lstm_sequence_forward(made, w_hh, h0, c0, bs, reverse, x, w_ih, b)
    atol, rtol = tol(dtype, max(lengths))
    assert_close(made, fed, atol=atol, rtol=rtol, what="activated gates")
    for name, a, w in zip(("y", "c_all", "h_n", "c_n"), got, want):
        assert_close(a, w, atol=atol, rtol=rtol, what=name)


def test_lstm_forward_projection_bad_inputs_raise(rng):
    H, I = 4, 3
    bs = np.array([2, 2], np.int64)
    w = rng.standard_normal((4 * H, H)).astype(np.float32)
    h0 = np.zeros((2, H), np.float32)
    gates = np.empty((4, 4 * H), np.float32)
    x, w_ih = rng.standard_normal((4, I)).astype(np.float32), rng.standard_normal((4 * H, I)).astype(np.float32)
    with pytest.raises(ValueError, match="lstm_sequence_forward: x and w_ih go together"):
        _C.lstm_sequence_forward(gates, w, h0, h0, bs, False, x)
    with pytest.raises(ValueError, match="lstm_sequence_forward: x and w_ih go together.*bias needs them"):
        _C.lstm_sequence_forward(gates, w, h0, h0, bs, False, None, None, np.zeros(4 * H, np.float32))
    with pytest.raises(ValueError, match=r"lstm_sequence_forward: w_ih must have shape \(16, 3\)"):
        _C.lstm_sequence_forward(gates, w, h0, h0, bs, False, x, w_ih[:, :2].copy())
    with pytest.raises(ValueError, match=r"lstm_sequence_forward: x must have shape \(4, 3\)"):
        _C.lstm_sequence_forward(gates, w, h0, h0, bs, False, x[:3], w_ih)
    with pytest.raises(ValueError, match=r"lstm_sequence_forward: bias must have shape \(16,\), got \(15,\)"):
        _C.lstm_sequence_forward(gates, w, h0, h0, bs, False, x, w_ih, np.zeros(15, np.float32))
    with pytest.raises(TypeError, match="lstm_sequence_forward"):
        _C.lstm_sequence_forward(gates, w, h0, h0, bs, False, x.astype(np.float64), w_ih)
    with pytest.raises(ValueError, match="gates must not overlap an input"):
        big = rng.standard_normal((4, 4 * H)).astype(np.float32)
        _C.lstm_sequence_forward(big, w, h0, h0, bs, False, big.reshape(-1)[:4 * I].reshape(4, I), w_ih)


# ---- the LSTM backward's grad_x ------------------------------------------------------------------

# (lengths, H, I): from 32 rows, H on the panel width of every ISA and I <= H / 2, grad_x in the
# walk (ragged down to 2-row steps: the serpentine carry); otherwise one GEMM after the walk.
GRAD_X_CASES = [([3] * 32, 64, 16), ([5] * 2 + [3] * 31, 128, 64), ([4] * 20 + [2] * 14, 64, 32),
                ([5] * 4, 64, 64), ([7, 5, 5, 2, 1], 64, 13), ([6, 4, 4, 1], 17, 5), ([9], 64, 70), ([2, 2], 16, 130)]


@pytest.mark.parametrize("need_grad_h0", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths,H,I", GRAD_X_CASES)
def test_lstm_backward_grad_x(isa, threads, rng, lengths, H, I, reverse, dtype, need_grad_h0):
    """grad_x_out := grad_gates w_ih, and the other outputs bit for bit as without w_ih."""
    pre_x, h0, c0, w_hh, _, gy, ghn, gcn = (a.astype(dtype) for a in random_problem(rng, "lstm", lengths, H))
    w_ih = rng.standard_normal((4 * H, I)).astype(dtype)
    bs, _ = packed_rows(lengths)
    gates = pre_x.copy()
    _, c_all, _, _ = _C.lstm_sequence_forward(gates, w_hh, h0, c0, bs, reverse)
    plain = _C.lstm_sequence_backward(w_hh, gates, c_all, c0, bs, reverse, gy, ghn, gcn, need_grad_h0)
    grad_x = np.full((sum(lengths), I), np.nan, dtype)
    fused = _C.lstm_sequence_backward(w_hh, gates, c_all, c0, bs, reverse, gy, ghn, gcn, need_grad_h0,
                                      w_ih=w_ih, grad_x_out=grad_x)
    for a, b in zip(fused, plain):
        assert (a is None and b is None) or np.array_equal(a, b)
    d64, w64 = plain[0].astype(np.float64), w_ih.astype(np.float64)
    assert_close_reduction(grad_x, d64 @ w64, np.abs(d64) @ np.abs(w64), 4 * H, dtype, what="grad_x")


@pytest.mark.parametrize("B,H,I", [(32, 64, 16), (40, 128, 64)])
def test_lstm_projection_and_grad_x_with_units_split_among_threads(rng, B, H, I):
    """8 threads split 32-40 rows by hidden units (fewer than 6 rows each): the tile's projection
    and the grad_x columns (taken by the part that owns the last units) as on one thread."""
    T = 4
    bs = np.full(T, B, np.int64)
    w_hh = (0.3 * rng.standard_normal((4 * H, H))).astype(np.float32)
    w_ih = (0.3 * rng.standard_normal((4 * H, I))).astype(np.float32)
    x, gy = rng.standard_normal((T * B, I)).astype(np.float32), rng.standard_normal((T * B, H)).astype(np.float32)
    h0, c0 = (rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    bias = rng.standard_normal(4 * H).astype(np.float32)

    def run():
        gates, grad_x = np.empty((T * B, 4 * H), np.float32), np.empty((T * B, I), np.float32)
        fwd = _C.lstm_sequence_forward(gates, w_hh, h0, c0, bs, False, x, w_ih, bias)
        bwd = _C.lstm_sequence_backward(w_hh, gates, fwd[1], c0, bs, False, gy, None, None, True, w_ih, grad_x)
        return (gates, grad_x) + fwd + bwd

    previous = _C.get_num_threads()
    try:
        _C.set_num_threads(1)
        one = run()
        _C.set_num_threads(8)
        eight = run()
    finally:
        _C.set_num_threads(previous)
    for a, b in zip(eight, one):
        assert_close(a, b, atol=1e-4, rtol=1e-4, what="8 threads vs 1")


def test_lstm_backward_grad_x_bad_inputs_raise(rng):
    H, I = 4, 3
    bs = np.array([2, 2], np.int64)
    w = rng.standard_normal((4 * H, H)).astype(np.float32)
    h0 = np.zeros((2, H), np.float32)
    gates = rng.standard_normal((4, 4 * H)).astype(np.float32)
    _, c_all, _, _ = _C.lstm_sequence_forward(gates, w, h0, h0, bs)
    w_ih, out = rng.standard_normal((4 * H, I)).astype(np.float32), np.empty((4, I), np.float32)

    def call(**kw):
        return _C.lstm_sequence_backward(w, gates, c_all, h0, bs, False, None, None, None, **kw)

    with pytest.raises(ValueError, match="lstm_sequence_backward: w_ih and grad_x_out go together.*got only w_ih"):
        call(w_ih=w_ih)
    with pytest.raises(ValueError, match=r"lstm_sequence_backward: w_ih must have shape \(16, 3\), got \(15, 3\)"):
        call(w_ih=w_ih[:15], grad_x_out=out)
    with pytest.raises(ValueError, match="lstm_sequence_backward: grad_x_out"):
        call(w_ih=w_ih, grad_x_out=out[:3])
    with pytest.raises(ValueError, match="grad_x_out must not overlap an input"):
        call(w_ih=w_ih, grad_x_out=w_ih[:4])
    with pytest.raises(TypeError, match="lstm_sequence_backward"):
        call(w_ih=w_ih.astype(np.float64), grad_x_out=out)


# ---- weight gradients of a padded batch ----------------------------------------------------------

# (T, B, I, H, G): I a whole number of 64- and 16-wide panels (one GEMM over [x | h_prev]) or
# not (a GEMM per block); T = 1 (h_prev is h0 alone); deep enough for several depth blocks, and
# rows past one row block (G = 384), as the 2-thread grid splits them.
WEIGHT_GRAD_CASES = [(7, 5, 64, 20, 80), (4, 3, 13, 11, 44), (1, 4, 16, 8, 32), (6, 2, 128, 70, 280),
                     (30, 20, 64, 96, 384), (3, 7, 1, 5, 15), (4, 3, 0, 64, 256)]


@pytest.mark.parametrize("h0_kind", ["random", "zeros"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T,B,I,H,G", WEIGHT_GRAD_CASES)
def test_weight_grads_match_float64_products(isa, threads, rng, T, B, I, H, G, reverse, dtype, h0_kind):
    """(grad_gates^T x, grad_gates^T h_prev), h_prev each row's previous state: h0, or y one step
    earlier (later when reverse)."""
    total = T * B
    d, x, y = (rng.standard_normal(shape).astype(dtype) for shape in ((total, G), (total, I), (total, H)))
    h0 = rng.standard_normal((B, H)).astype(dtype) if h0_kind == "random" else np.zeros((B, H), dtype)
    grad_w_ih, grad_w_hh = _C.rnn_weight_grads(d, x, y, h0, reverse)
    h_prev = np.concatenate([y[B:], h0]) if reverse else np.concatenate([h0, y[:total - B]])  # (total, H)
    d64 = d.astype(np.float64)
    for got, b, name in ((grad_w_ih, x, "grad_w_ih"), (grad_w_hh, h_prev, "grad_w_hh")):
        assert got.shape == (G, b.shape[1]) and got.dtype == dtype
        b64 = b.astype(np.float64)
        assert_close_reduction(got, d64.T @ b64, np.abs(d64).T @ np.abs(b64), total, dtype, what=name)


def test_weight_grads_of_a_zero_state_step_are_exact_zeros(rng):
    """One step from a zero h0: grad_w_hh is exactly zero (the zero rows add nothing, and NaN-free)."""
    d, x = rng.standard_normal((6, 40)).astype(np.float32), rng.standard_normal((6, 64)).astype(np.float32)
    y = np.full((6, 10), np.nan, np.float32)  # never read: one step has no previous outputs
    grad_w_ih, grad_w_hh = _C.rnn_weight_grads(d, x, y, np.zeros((6, 10), np.float32))
    np.testing.assert_array_equal(grad_w_hh, np.zeros((40, 10), np.float32))
    assert np.all(np.isfinite(grad_w_ih))


def test_weight_grads_bad_inputs_raise(rng):
    d, x, y = (rng.standard_normal(s).astype(np.float32) for s in ((12, 8), (12, 3), (12, 2)))
    h0 = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"rnn_weight_grads: the rows of grad_gates, x and y \(12\) must be whole "
                                         r"steps of the batch B = 5"):
        _C.rnn_weight_grads(d, x, y, np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="rnn_weight_grads.*y"):
        _C.rnn_weight_grads(d, x, y[:8], h0)
    with pytest.raises(ValueError, match="rnn_weight_grads.*x"):
        _C.rnn_weight_grads(d, x[:6], y, h0)
    with pytest.raises(ValueError, match=r"rnn_weight_grads: y must have shape \(12, 3\), got \(12, 2\)"):
        _C.rnn_weight_grads(d, x, y, np.zeros((4, 3), np.float32))  # H from h0
    with pytest.raises(TypeError, match="rnn_weight_grads"):
        _C.rnn_weight_grads(d, x.astype(np.float64), y, h0)
    with pytest.raises(ValueError, match="rnn_weight_grads.*contiguous"):
        _C.rnn_weight_grads(d, np.asfortranarray(x), y, h0)


# ---- bad input ---------------------------------------------------------------------------------

def test_bad_inputs_raise(rng):
    H, B = 4, 3
    w = rng.standard_normal((4 * H, H)).astype(np.float32)
    h0 = np.zeros((B, H), np.float32)
    bs = np.array([3, 2], np.int64)
    gates = rng.standard_normal((5, 4 * H)).astype(np.float32)
    with pytest.raises(ValueError, match=r"lstm_sequence_forward: batch_sizes\[0\] must equal the batch size B = 3"):
        _C.lstm_sequence_forward(gates, w, h0, h0, np.array([2, 2, 1], np.int64))
    with pytest.raises(ValueError, match="non-increasing and >= 1, got 3 at step 1 after 2"):
        _C.lstm_sequence_forward(gates, w, h0[:2], h0[:2], np.array([2, 3], np.int64))
    with pytest.raises(ValueError, match="batch_sizes is empty"):
        _C.lstm_sequence_forward(gates, w, h0, h0, np.array([], np.int64))
    with pytest.raises(ValueError, match=r"gates"):
        _C.lstm_sequence_forward(gates[:4], w, h0, h0, bs)
    with pytest.raises(ValueError, match=r"w_hh must be \(4 \* H, H\)"):
        _C.lstm_sequence_forward(gates, w[:15], h0, h0, bs)
    with pytest.raises(TypeError, match="lstm_sequence_forward"):
        _C.lstm_sequence_forward(gates, w.astype(np.float64), h0, h0, bs)
    with pytest.raises(TypeError, match="batch_sizes"):
        _C.lstm_sequence_forward(gates, w, h0, h0, bs.astype(np.int32))
    read_only = gates.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="gates must be writeable"):
        _C.lstm_sequence_forward(read_only, w, h0, h0, bs)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        _C.rnn_sequence_forward(gates[:, :H].copy(), w[:H], h0, bs, False, "gelu")
    with pytest.raises(ValueError, match="grad_y"):
        gates2 = gates.copy()
        _, c_all, _, _ = _C.lstm_sequence_forward(gates2, w, h0, h0, bs)
        _C.lstm_sequence_backward(w, gates2, c_all, h0, bs, False, np.zeros((4, H), np.float32), None, None)
