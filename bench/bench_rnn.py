"""Single-layer float32 LSTM over a whole sequence: dlcore.nn.LSTM vs torch.nn.LSTM side by side,
same weights, forward only and forward + backward, on 1 and 2 threads.

    DLCORE_DEV_BUILD=/tmp/build PYTHONPATH=python python bench/bench_rnn.py \
        [--threads 1,2] [--shapes small,large,ptb,batch1] [--repeat 5] [--quick]

Shapes are (T, B, I, H) = (seq, batch, input_size, hidden_size): small (50, 32, 128, 256),
large (100, 64, 512, 512), ptb (35, 20, 650, 650; the medium PTB language model), batch1
(100, 1, 128, 256; one sequence, latency bound).

Floor (napkin math): the forward is one (T*B, I) x (I, 4H) GEMM for the input projections plus
T dependent (B, H) x (H, 4H) GEMMs, 2*T*B*4H*(I + H) FLOP; backward runs the same GEMMs twice
more (dgates W_ih and dgates W_hh for dx and dh, x^T dgates and h^T dgates for the weights), so
forward + backward is 3x that. The pointwise gate math is O(T*B*H), negligible at these sizes
except batch1, where each step is a (1, H) x (H, 4H) matrix-vector product: W_hh (1 MiB at
H = 256) streams from cache once per step for 2 FLOP per weight, and each step waits for the
one before, so its % of peak is low for both libraries. E.g. large: 26.8 GFLOP forward, 80.5
forward + backward, so at the 117 GFLOP/s one-core FMA peak here >= 0.23 s and >= 0.69 s.

Columns: shape; thr (threads); dir (fwd: forward under no_grad; fwd+bwd: forward with grad,
then backward of sum(output * G) for a fixed random G, i.e. output.backward(G), with the input
and all four parameters requiring grad; h0, c0 are fixed random, not requiring grad); dlcore ms and torch ms (median (min) per call over --repeat samples after a
warm-up); dlcore tok/s (T*B / median time); dlcore GF/s (the FLOP above / median time);
% peak (of bench/peak_probe.py's measured FMA peak at that thread count); torch/dlcore (time
ratio, > 1: dlcore faster); goal (1.5x torch's speed, or 90 % of peak where 1.5x would exceed
it) and whether dlcore meets it.

Each library runs in its own child process per (shape, threads), back to back (GNU OpenMP in
dlcore and torch's thread pool spin against each other on two cores; see _sidebyside.py). The
weights are torch.nn.LSTM's initialisation, copied into dlcore through load_state_dict. Before
timing, the dlcore child checks its first forward against torch's (max |output diff| < 1e-4)
and its first backward's gradients against torch's, and fails the run if they differ; without
torch it checks the forward against a float64 NumPy LSTM and times dlcore alone.
"""
import argparse
import datetime
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _sidebyside import best_rows, busy_cpu_seconds, torch_available, wait_until_idle

# name -> (T, B, I, H)
SHAPES = {
    "small": (50, 32, 128, 256),
    "large": (100, 64, 512, 512),
    "ptb": (35, 20, 650, 650),
    "batch1": (100, 1, 128, 256),
}
DIRECTIONS = ("fwd", "fwd+bwd")
PARAMS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
OUTPUT_TOL = 1e-4     # max |dlcore - reference| of the forward output
GRAD_RTOL = 1e-4      # gradients: max |dlcore - torch| <= GRAD_RTOL * max |torch| per tensor
GOAL_SPEEDUP = 1.5
GOAL_PEAK = 0.90


def flops(T, B, I, H, direction):
    forward = 2.0 * T * B * 4 * H * (I + H)
    return forward if direction == "fwd" else 3.0 * forward


def time_call(fn, repeat, sample_s):
    """(median, min) seconds per call: 2 warm-up calls, then `repeat` samples of >= sample_s."""
    t0 = time.perf_counter()
    fn()
    fn()
    per_call = (time.perf_counter() - t0) / 2
    inner = max(1, round(sample_s / per_call))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times), min(times)


def torch_reference(case, torch_model, steps):
    """Adds torch's initial weights and its first `steps` losses (ref_losses) to the case dict of a
    training-step benchmark (bench_lenet5_step, bench_char_lstm_step); torch must be installed."""
    import torch

    torch.manual_seed(0)
    model, step = torch_model(case)
    case.update({k: v.detach().numpy().copy() for k, v in model.state_dict().items()})  # before any step
    case["ref_losses"] = np.array([step().item() for _ in range(steps)])


def training_step(model, opt, loss_fn, x, y):
    """One training step as a call -> loss: zero the gradients, loss_fn(model(x), y), backward,
    opt.step(). The same for dlcore and torch (their APIs agree)."""

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def train_step_child(name, lib, threads, case, models, repeat, sample_s, loss_tol):
    """A training-step benchmark's child (bench_lenet5_step, bench_char_lstm_step): builds lib's
    model from the case with models = (dlcore_model, torch_model), each returning (model, step);
    dlcore's first losses must match case["ref_losses"] where the case has them (wrong results
    are never timed); then times one step."""
    if lib == "dlcore":
        import dlcore

        dlcore.set_num_threads(threads)
        _, step = models[0](case)
        if "ref_losses" in case:
            ref = case["ref_losses"]
            losses = np.array([step().item() for _ in range(ref.size)])
            worst = float(np.max(np.abs(losses - ref)))
            if not worst < loss_tol:
                raise SystemExit(f"{name}: dlcore losses {losses.tolist()} differ from the reference "
                                 f"{ref.tolist()} (max |diff| {worst:.3g} >= {loss_tol}); not timing wrong results")
    else:
        import torch

        torch.set_num_threads(threads)
        _, step = models[1](case)
    return {"step": time_call(step, repeat, sample_s)}


# ---------------------------------------------------------------- the case both children run
def numpy_lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """float64 reference forward: x (T, B, I), h0/c0 (B, H) -> output (T, B, H). Gates (i, f, g, o)."""
    x, h, c = (a.astype(np.float64) for a in (x, h0, c0))
    w_ih, w_hh, b = w_ih.astype(np.float64), w_hh.astype(np.float64), (b_ih + b_hh).astype(np.float64)

    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    out = []
    for t in range(x.shape[0]):
        i, f, g, o = np.split(x[t] @ w_ih.T + h @ w_hh.T + b, 4, axis=1)  # each (B, H)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def make_case(shape, path):
    """Writes weights, inputs and reference results for one shape to `path` (.npz); returns the
    name of the reference ('torch' or 'numpy float64')."""
    T, B, I, H = SHAPES[shape]
    rng = np.random.default_rng(0)
    case = {
        "x": rng.standard_normal((T, B, I), dtype=np.float32),
        "h0": 0.5 * rng.standard_normal((1, B, H), dtype=np.float32),
        "c0": 0.5 * rng.standard_normal((1, B, H), dtype=np.float32),
        "grad_output": rng.standard_normal((T, B, H), dtype=np.float32),  # G in sum(output * G)
    }
    if torch_available():
        import torch

        torch.manual_seed(0)
        lstm = torch.nn.LSTM(I, H)
        case.update({k: v.detach().numpy().copy() for k, v in lstm.state_dict().items()})
        x = torch.from_numpy(case["x"]).requires_grad_()
        y, _ = lstm(x, (torch.from_numpy(case["h0"]), torch.from_numpy(case["c0"])))
        y.backward(torch.from_numpy(case["grad_output"]))
        case["ref_output"] = y.detach().numpy()
        case["ref_grad_x"] = x.grad.numpy()
        for name, p in lstm.named_parameters():
            case["ref_grad_" + name] = p.grad.numpy()
        reference = "torch"
    else:
        bound = 1.0 / np.sqrt(H)
        for name in PARAMS:
            shape_p = (4 * H, I if name == "weight_ih_l0" else H) if name.startswith("weight") else (4 * H,)
            case[name] = rng.uniform(-bound, bound, shape_p).astype(np.float32)
        case["ref_output"] = numpy_lstm(case["x"], case["h0"][0], case["c0"][0], *(case[n] for n in PARAMS))
        reference = "numpy float64"
    np.savez(path, **case)
    return reference


def check(case, output, grads, shape):
    """Raises if the first forward (and backward) of dlcore disagree with the reference."""
    diff = float(np.max(np.abs(output - case["ref_output"])))
    if not diff < OUTPUT_TOL:
        raise SystemExit(f"bench_rnn: dlcore LSTM output differs from the reference at {shape}: "
                         f"max |diff| {diff:.3g} >= {OUTPUT_TOL}; not timing wrong results")
    for name, g in (grads or {}).items():
        ref = case.get("ref_grad_" + name)
        if ref is None:
            continue
        diff = float(np.max(np.abs(g - ref)))
        tol = GRAD_RTOL * float(np.max(np.abs(ref)))
        if not diff <= tol:
            raise SystemExit(f"bench_rnn: dlcore LSTM grad of {name} differs from torch's at {shape}: "
                             f"max |diff| {diff:.3g} > {tol:.3g}; not timing wrong results")


# ---------------------------------------------------------------- child side: one library
def lstm_runs(lib, case, T, B, I, H):
    """{direction: fn} over lib.nn.LSTM (lib = dlcore or torch: the same API) at the case's
    weights and inputs, plus `first(direction)` -> (output, grads) for the correctness check."""
    lstm = lib.nn.LSTM(I, H)
    lstm.load_state_dict({k: lib.from_numpy(case[k].copy()) for k in PARAMS})
    x = lib.from_numpy(case["x"])
    x.requires_grad_()
    state = (lib.from_numpy(case["h0"]), lib.from_numpy(case["c0"]))
    grad_output = lib.from_numpy(case["grad_output"])

    def fwd():
        with lib.no_grad():
            return lstm(x, state)[0]

    def fwd_bwd():
        x.grad = None
        lstm.zero_grad()
        y, _ = lstm(x, state)
        y.backward(grad_output)
        return y

    def first(direction):
        if direction == "fwd":
            return fwd().numpy(), None
        y = fwd_bwd()
        grads = {"x": x.grad.numpy(), **{n: getattr(lstm, n).grad.numpy() for n in PARAMS}}
        return y.detach().numpy(), grads

    return {"fwd": fwd, "fwd+bwd": fwd_bwd}, first


def child(lib, threads, shape, case_path, directions, repeat, sample_s):
    if lib == "dlcore":
        import dlcore as module
    else:
        import torch as module
    module.set_num_threads(threads)
    case = dict(np.load(case_path))
    runs, first = lstm_runs(module, case, *SHAPES[shape])
    rows = {}
    for d in directions:
        if lib == "dlcore":  # the baseline is the reference; only dlcore is checked
            check(case, *first(d), shape)
        rows[d] = time_call(runs[d], repeat, sample_s)
    return rows


# ---------------------------------------------------------------- parent side: the table
def run_child(script, lib, threads, argv, wait_idle):
    """Runs `script --only lib --threads threads argv...` with OMP_NUM_THREADS set; returns the
    JSON its last line prints, as {"rows": ..., "foreign": share of the CPUs other processes
    used while it ran} (a build beside the benchmark skews its times)."""
    cmd = [sys.executable, script, "--only", lib, "--threads", str(threads), *argv]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    if wait_idle:
        wait_until_idle(wait_idle)
    b0, r0, t0 = busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    b1, r1, t1 = busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    if out.returncode != 0:
        raise SystemExit(f"{os.path.basename(script)} --only {lib} --threads {threads} {' '.join(argv)} failed:\n"
                         f"{out.stderr.strip()}")
    result = {"rows": json.loads(out.stdout.strip().splitlines()[-1])}
    if b0 is not None:
        mine = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        result["foreign"] = max(0.0, (b1 - b0 - mine) / ((t1 - t0) * os.cpu_count()))
    return result


def run_pair(script, libs, threads, argv, args):
    """{lib: child result}, back to back; a child that ran while other processes used > 15 % of
    the CPUs is rerun (up to args.retries times) and the quietest run kept. With args.rounds > 1
    the libraries' children alternate (A B, B A, A B, ...) and each row keeps, per library, its
    round with the lowest median (best_rows): the host's load, which the VM cannot see, then
    falls on both libraries alike instead of on whichever ran during a busy spell."""
    rounds = []
    for i in range(args.rounds):
        results = {}
        for lib in (libs if i % 2 == 0 else libs[::-1]):
            for _ in range(1 + args.retries):
                r = run_child(script, lib, threads, argv, args.wait_idle)
                if lib not in results or r.get("foreign", 0) < results[lib].get("foreign", 0):
                    results[lib] = r
                if results[lib].get("foreign", 0) <= 0.15:
                    break
        rounds.append(results)
    merged = {}
    for lib in libs:
        runs = [r[lib] for r in rounds]
        merged[lib] = {"rows": functools.reduce(best_rows, [r["rows"] for r in runs])}
        if all("foreign" in r for r in runs):
            merged[lib]["foreign"] = max(r["foreign"] for r in runs)
    return merged


def foreign_warning(results):
    """A warning line when other processes used > 10 % of the CPUs during any child, else None."""
    foreign = [r["foreign"] for pair in results for r in pair.values() if "foreign" in r]
    if foreign and max(foreign) > 0.10:
        return (f"# WARNING: other processes used up to {100 * max(foreign):.0f} % of the CPUs during a child; "
                "times are skewed")
    return None


def goal(torch_gf, peak_gf):
    """(GFLOP/s dlcore must reach, label): 1.5x torch, or 90 % of peak where that is lower."""
    if torch_gf is None:
        return None, "-"
    if GOAL_SPEEDUP * torch_gf > GOAL_PEAK * peak_gf:
        return GOAL_PEAK * peak_gf, f"{100 * GOAL_PEAK:.0f} % peak"
    return GOAL_SPEEDUP * torch_gf, f"{GOAL_SPEEDUP}x torch"


def header(title, args, peak, note):
    """The lines above a table: machine, build, commit, peaks, torch version, the check, timing."""
    import dlcore
    import peak_probe

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE, check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "csrc", "python/dlcore"],
                           capture_output=True, text=True, cwd=HERE, check=False).stdout.strip()
    lines = [(f"# {title} | {peak_probe.cpu_model()} ({os.cpu_count()} CPUs, {platform.machine()}) | "
              f"dlcore {dlcore.__version__} isa {dlcore.cpu_isa()} | commit {commit}"
              f"{' + uncommitted edits' if dirty else ''} | {datetime.datetime.now():%Y-%m-%d %H:%M} | "
              f"load avg {os.getloadavg()[0]:.2f}")]
    for t in args.threads:
        isa, gf = peak_probe.fma_peak(peak, t)
        lines.append(f"# peak {t} thr: {gf:.1f} GFLOP/s FMA ({isa}, bench/peak_probe.py)")
    if torch_available():
        import torch

        lines.append(f"# torch {torch.__version__}; {note}")
    else:
        lines.append(f"# torch not installed: dlcore alone, no ratio or goal; {note}")
    rounds = (f"; best of {args.rounds} alternating rounds per library (the round with the lowest median)"
              if args.rounds > 1 else "")
    lines.append(f"# {args.repeat} samples of >= {args.sample} s after 2 warm-up calls; ms = median (min) per call"
                 f"{rounds}")
    return lines


def add_common_args(parser, sample_s):
    """The options both LSTM benchmarks take (and the child-only ones)."""
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeat", type=int, default=None, help="timed samples per row (default 5; 2 with --quick)")
    parser.add_argument("--sample", type=float, default=None,
                        help=f"minimum seconds per sample (default {sample_s}; 0 with --quick: one call)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 samples of one call each, no waiting for an idle machine, no reruns")
    parser.add_argument("--wait-idle", type=float, default=None,
                        help="before each child, wait up to this many seconds for a quiet machine (default 30; 0: don't)")
    parser.add_argument("--retries", type=int, default=None,
                        help="rerun a child that ran while other processes used > 15 %% of the machine (default 1)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="run the libraries' children this many times, alternating, and keep each row's "
                             "quietest round per library (default 1)")
    parser.add_argument("--only", choices=("dlcore", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)


def resolve_common_args(args, sample_s):
    """Fills the defaults that depend on --quick."""
    args.repeat = args.repeat or (2 if args.quick else 5)
    args.sample = args.sample if args.sample is not None else (0.0 if args.quick else sample_s)
    args.wait_idle = args.wait_idle if args.wait_idle is not None else (0.0 if args.quick else 30.0)
    args.retries = args.retries if args.retries is not None else (0 if args.quick else 1)
    args.rounds = args.rounds if args.rounds is not None else 1
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    if args.only:
        args.threads = int(args.threads)
    else:
        args.threads = [int(t) for t in args.threads.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated subset of {', '.join(SHAPES)}")
    parser.add_argument("--directions", default=",".join(DIRECTIONS), help="fwd, fwd+bwd or both")
    add_common_args(parser, sample_s=0.2)
    args = parser.parse_args()
    resolve_common_args(args, sample_s=0.2)
    args.directions = args.directions.split(",")
    shapes = args.shapes.split(",")
    unknown = [s for s in shapes if s not in SHAPES] + [d for d in args.directions if d not in DIRECTIONS]
    if unknown:
        raise SystemExit(f"bench_rnn: unknown shapes or directions {unknown}; shapes: {', '.join(SHAPES)}; "
                         f"directions: {', '.join(DIRECTIONS)}")
    if args.only:
        rows = child(args.only, args.threads, shapes[0], args.case, args.directions, args.repeat, args.sample)
        print(json.dumps(rows))
        return

    import peak_probe

    peak = peak_probe.load_or_measure(sorted(set(args.threads) | {1}))
    libs = ["dlcore", "torch"] if torch_available() else ["dlcore"]
    results = {}  # (shape, threads) -> {lib: child result}
    with tempfile.TemporaryDirectory(prefix="bench_rnn-") as tmp:
        for shape in shapes:
            case_path = os.path.join(tmp, f"{shape}.npz")
            reference = make_case(shape, case_path)
            for t in args.threads:
                argv = ["--shapes", shape, "--case", case_path, "--directions", ",".join(args.directions),
                        "--repeat", str(args.repeat), "--sample", str(args.sample)]
                results[shape, t] = run_pair(os.path.abspath(__file__), libs, t, argv, args)
    note = (f"dlcore's first forward checked against {reference} (max |diff| < {OUTPUT_TOL})"
            + (f", first backward's grads against torch's (<= {GRAD_RTOL} x max |grad|)" if reference == "torch" else ""))
    print("\n".join(header("LSTM float32, 1 layer", args, peak, note)))
    warning = foreign_warning(results.values())
    if warning:
        print(warning)
    print()
    head = ["shape (T, B, I, H)", "thr", "dir", "dlcore ms", "torch ms", "dlcore tok/s", "dlcore GF/s", "% peak",
            "torch/dlcore", "goal", "met"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for shape in shapes:
        T, B, I, H = SHAPES[shape]
        for t in args.threads:
            peak_gf = peak_probe.fma_peak(peak, t)[1]
            pair = results[shape, t]
            for d in args.directions:
                med, low = pair["dlcore"]["rows"][d]
                gf = flops(T, B, I, H, d) / med / 1e9
                cells = [f"{shape} {T}x{B}x{I}x{H}", str(t), d, f"{1e3 * med:.2f} ({1e3 * low:.2f})"]
                torch_gf = None
                if "torch" in pair:
                    tmed, tlow = pair["torch"]["rows"][d]
                    torch_gf = flops(T, B, I, H, d) / tmed / 1e9
                    cells.append(f"{1e3 * tmed:.2f} ({1e3 * tlow:.2f})")
                else:
                    cells.append("-")
                target, label = goal(torch_gf, peak_gf)
                cells += [f"{T * B / med:,.0f}", f"{gf:.1f}", f"{100 * gf / peak_gf:.0f} %",
                          f"{tmed / med:.2f}" if torch_gf else "-",
                          f"{label} ({target:.1f} GF/s)" if target else "-",
                          ("pass" if gf >= target else "miss") if target else "-"]
                print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
