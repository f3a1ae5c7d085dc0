"""One char-LSTM training step (forward, backward, Adam update): dlcore vs PyTorch side by side,
same model, weights, batch and threads, on 1 and 2 threads.

    DLCORE_DEV_BUILD=/tmp/build PYTHONPATH=python python bench/bench_char_lstm_step.py \
        [--threads 1,2] [--repeat 5] [--quick]

Model: Embedding(65, 64) -> LSTM(64, 512, 1 layer) -> Linear(512, 65), cross-entropy (mean)
over all T*B = 100*32 = 3200 positions, Adam(lr=2e-3); zero initial state each step. Inputs and
targets are a fixed random batch of character ids (seq 100, batch 32).

Floor (napkin math): the LSTM forward is 2*T*B*4H*(E + H) = 7.55 GFLOP, the head 2*T*B*H*V =
0.21 GFLOP; backward is twice each (the LSTM's input gradient feeds the embedding), so a step
is ~23.3 GFLOP; the embedding, softmax, gate pointwise math and Adam over 1.23 M parameters
are memory-bound and small beside it. At the 117 GFLOP/s one-core FMA peak here that is
>= 0.2 s per step, <= ~16,000 tokens/s (x2 on two cores).

Columns: thr (threads); dlcore ms and torch ms (median (min) per step over --repeat samples
after 2 warm-up steps); tok/s of each (T*B / median step time); dlcore GF/s (the FLOP above /
median) and its % of bench/peak_probe.py's measured FMA peak at that thread count;
torch/dlcore (time ratio, > 1: dlcore faster); goal (1.5x torch's tokens/s, or 90 % of peak
where that is lower; the label says which) and whether dlcore meets it.

Each library runs in its own child process per thread count, back to back (see
_sidebyside.py). The weights are torch's initialisation, copied into dlcore; before timing,
the dlcore child checks its first three step losses (the 2nd and 3rd after Adam updates)
against torch's (|diff| < 1e-4) and fails the run if they differ. Without torch it checks the
first loss against a float64 NumPy forward and times dlcore alone.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _sidebyside import torch_available
from bench_rnn import (
    add_common_args,
    foreign_warning,
    header,
    numpy_lstm,
    resolve_common_args,
    run_pair,
    torch_reference,
    train_step_child,
    training_step,
)

V, E, H, T, B = 65, 64, 512, 100, 32  # vocab, embedding, hidden, seq, batch
LR = 2e-3
LOSS_TOL = 1e-4
CHECK_STEPS = 3
PARAMS = ("embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
          "head.weight", "head.bias")
FLOP_PER_STEP = 3 * (2.0 * T * B * 4 * H * (E + H) + 2.0 * T * B * H * V)
GOAL_SPEEDUP = 1.5
GOAL_PEAK = 0.90


# ---------------------------------------------------------------- the case both children run
def numpy_loss(case):
    """float64 reference of the first step's loss: mean cross-entropy of the model at `case`."""
    emb = case["embed.weight"][case["inputs"]]  # (T, B, E)
    zeros = np.zeros((B, H), np.float32)
    y = numpy_lstm(emb, zeros, zeros, *(case["lstm." + n] for n in ("weight_ih_l0", "weight_hh_l0",
                                                                  "bias_ih_l0", "bias_hh_l0")))  # (T, B, H)
    logits = y.reshape(T * B, H) @ case["head.weight"].T.astype(np.float64) + case["head.bias"]  # (T*B, V)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -float(np.mean(logp[np.arange(T * B), case["targets"]]))


def make_case(path):
    """Writes weights, the batch and the reference losses to `path` (.npz); returns the reference's name."""
    rng = np.random.default_rng(0)
    case = {"inputs": rng.integers(0, V, (T, B)).astype(np.int64),
            "targets": rng.integers(0, V, T * B).astype(np.int64)}
    if torch_available():
        torch_reference(case, torch_model, CHECK_STEPS)
        np.savez(path, **case)
        return "torch"
    case["embed.weight"] = rng.standard_normal((V, E), dtype=np.float32)
    for name, shape, fan in (("lstm.weight_ih_l0", (4 * H, E), H), ("lstm.weight_hh_l0", (4 * H, H), H),
                             ("lstm.bias_ih_l0", (4 * H,), H), ("lstm.bias_hh_l0", (4 * H,), H),
                             ("head.weight", (V, H), H), ("head.bias", (V,), H)):
        case[name] = rng.uniform(-fan ** -0.5, fan ** -0.5, shape).astype(np.float32)
    case["ref_losses"] = np.array([numpy_loss(case)])
    np.savez(path, **case)
    return "numpy float64"


# ---------------------------------------------------------------- child side: one library
def char_lstm(nn):
    """The benchmark's model built from `nn` (dlcore.nn or torch.nn: the same API)."""

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H)
            self.head = nn.Linear(H, V)

        def forward(self, x):  # x (T, B) int64
            y, _ = self.lstm(self.embed(x))  # (T, B, H)
            return self.head(y.reshape(T * B, H))  # (T*B, V)

    return CharLSTM()


def dlcore_model(case):
    """(model, step): the dlcore model at the case's weights and one training step -> loss."""
    import dlcore
    from dlcore import nn

    model = char_lstm(nn)
    model.load_state_dict({k: dlcore.from_numpy(case[k].copy()) for k in PARAMS})
    opt = dlcore.optim.Adam(model.parameters(), lr=LR)
    x, y = dlcore.from_numpy(case["inputs"]), dlcore.from_numpy(case["targets"])
    return model, training_step(model, opt, dlcore.cross_entropy, x, y)


def torch_model(case):
    import torch
    from torch import nn

    model = char_lstm(nn)
    if PARAMS[0] in case:  # else (make_case) keep torch's initialisation
        model.load_state_dict({k: torch.from_numpy(case[k].copy()) for k in PARAMS})
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x, y = torch.from_numpy(case["inputs"]), torch.from_numpy(case["targets"])
    return model, training_step(model, opt, nn.functional.cross_entropy, x, y)


def child(lib, threads, case_path, repeat, sample_s):
    return train_step_child("bench_char_lstm_step", lib, threads, dict(np.load(case_path)), (dlcore_model, torch_model), repeat,
                            sample_s, LOSS_TOL)


# ---------------------------------------------------------------- parent side: the table
def goal(torch_tps, peak_gf):
    """(tokens/s dlcore must reach, label): 1.5x torch, or 90 % of peak where that is lower."""
    if torch_tps is None:
        return None, "-"
    peak_tps = GOAL_PEAK * peak_gf * 1e9 / (FLOP_PER_STEP / (T * B))
    if GOAL_SPEEDUP * torch_tps > peak_tps:
        return peak_tps, f"{100 * GOAL_PEAK:.0f} % peak"
    return GOAL_SPEEDUP * torch_tps, f"{GOAL_SPEEDUP}x torch"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, sample_s=0.5)
    args = parser.parse_args()
    resolve_common_args(args, sample_s=0.5)
    if args.only:
        print(json.dumps(child(args.only, args.threads, args.case, args.repeat, args.sample)))
        return

    import peak_probe

    peak = peak_probe.load_or_measure(sorted(set(args.threads) | {1}))
    libs = ["dlcore", "torch"] if torch_available() else ["dlcore"]
    results = {}  # threads -> {lib: child result}
    with tempfile.TemporaryDirectory(prefix="bench_char_lstm-") as tmp:
        case_path = os.path.join(tmp, "case.npz")
        reference = make_case(case_path)
        argv = ["--case", case_path, "--repeat", str(args.repeat), "--sample", str(args.sample)]
        for t in args.threads:
            results[t] = run_pair(os.path.abspath(__file__), libs, t, argv, args)
    checked = f"first {CHECK_STEPS} step losses" if reference == "torch" else "first step loss"
    note = f"dlcore's {checked} checked against {reference} (|diff| < {LOSS_TOL})"
    title = (f"char-LSTM train step: Embedding({V}, {E}) -> LSTM({E}, {H}) -> Linear({H}, {V}), seq {T}, batch {B}, "
             f"Adam lr {LR}, {FLOP_PER_STEP / 1e9:.1f} GFLOP/step")
    print("\n".join(header(title, args, peak, note)))
    warning = foreign_warning(results.values())
    if warning:
        print(warning)
    print()
    head = ["thr", "dlcore ms", "torch ms", "dlcore tok/s", "torch tok/s", "dlcore GF/s", "% peak", "torch/dlcore",
            "goal", "met"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for t in args.threads:
        peak_gf = peak_probe.fma_peak(peak, t)[1]
        med, low = results[t]["dlcore"]["rows"]["step"]
        tps, gf = T * B / med, FLOP_PER_STEP / med / 1e9
        cells = [str(t), f"{1e3 * med:.1f} ({1e3 * low:.1f})"]
        torch_tps = None
        if "torch" in results[t]:
            tmed, tlow = results[t]["torch"]["rows"]["step"]
            torch_tps = T * B / tmed
            cells += [f"{1e3 * tmed:.1f} ({1e3 * tlow:.1f})"]
        else:
            cells += ["-"]
        target, label = goal(torch_tps, peak_gf)
        cells += [f"{tps:,.0f}", f"{torch_tps:,.0f}" if torch_tps else "-", f"{gf:.1f}", f"{100 * gf / peak_gf:.0f} %",
                  f"{tmed / med:.2f}" if torch_tps else "-",
                  f"{label} ({target:,.0f} tok/s)" if target else "-",
                  ("pass" if tps >= target else "miss") if target else "-"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
