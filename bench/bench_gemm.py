"""float32 GEMM: dlcore vs NumPy (OpenBLAS) vs PyTorch (MKL) side by side, on 1 and N threads.

    DLCORE_DEV_BUILD=/tmp/build PYTHONPATH=python python bench/bench_gemm.py \
        [--threads 1,2] [--shapes squares,fc,ptb.dA,...] [--quick] [--budget 0.2]

One table, one row per (shape, ops, threads): GFLOP/s of each library from its median time,
median/min time, dlcore's and the best baseline's % of this machine's measured FMA peak
(bench/peak_probe.py, the best ISA at that thread count), the ratio dlcore / best baseline and
issue 3's goal: at every shape from 128 up, dlcore >= max(best, min(1.2 * best, 0.92 * peak)).

Shapes are M x N x K of C (M, N) = op(A) (M, K) @ op(B) (K, N): the squares 32..2048 and the
shapes training runs, each with the two GEMMs its backward runs without materialising a
transpose: dA = dC B^T (M x K x N, B transposed: "NT") and dB = A^T dC (K x N x M, A
transposed: "TN"). One extra row times `dlcore.matmul` on Tensors (LeNet fc shape) beside
`_C.gemm` to show the Python layer's cost.

Each library runs in its own child process per thread count, back to back in one run
(dlcore's GNU OpenMP, MKL's and OpenBLAS's thread pools spin against each other on two cores).
Every call writes into a preallocated C (`_C.gemm(A, B, C, ...)`, `np.matmul(out=)`,
`torch.mm(out=)`), so the table compares kernels, not allocators. The NumPy child runs with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment and OPENBLAS_NUM_THREADS
set to the thread count; the header names the OpenBLAS core it picked.

Timing: fixed-seed standard-normal inputs, warm-up of >= 2 calls and >= 50 ms, then samples of
>= 10 ms each for ~`--budget` seconds (5..200 samples); median and min per call.
Floor: 2*M*N*K FLOP at the FMA peak (117 GFLOP/s on one core here, 234 on two; see RESULTS.md).
"""
import argparse
import ctypes
import datetime
import glob
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _sidebyside import best_rows, busy_cpu_seconds, wait_until_idle

LIBS = ("dlcore", "numpy", "torch")

# name -> (M, N, K) of the forward GEMM C = A @ B.
SQUARES = {str(n): (n, n, n) for n in (32, 64, 128, 256, 512, 1024, 2048)}
TRAINING = {
    "fc": (64, 4096, 1024),      # a wide Linear layer, batch 64
    "lenet": (256, 120, 400),    # LeNet-5 fc1, batch 256
    "im2col": (4096, 64, 576),   # conv as GEMM: 4096 output pixels, 64 channels, 3x3x64 taps
    "lstm": (64, 2048, 512),     # LSTM step: batch 64, 4 gates x 512 hidden, 512 inputs
    "ptb": (20, 2600, 650),      # PTB LSTM step: batch 20, 4 x 650 gates, 650 inputs
}
MATMUL_ROW = "lenet"  # the shape also timed through dlcore.matmul
GOAL_FROM = 128       # the goal applies to squares from 128 up and every training shape


def all_shapes():
    """[(key, M, N, K, trans_a, trans_b)] in table order."""
    rows = [(k, *mnk, False, False) for k, mnk in SQUARES.items()]
    for name, (m, n, k) in TRAINING.items():
        rows.append((name, m, n, k, False, False))
        rows.append((name + ".dA", m, k, n, False, True))   # dA (M, K) = dC (M, N) @ B^T, B stored (K, N)
        rows.append((name + ".dB", k, n, m, True, False))   # dB (K, N) = A^T @ dC, A stored (M, K)
    return rows


def select_shapes(spec):
    rows = all_shapes()
    if not spec:
        return rows
    wanted = set()
    for item in spec.split(","):
        item = item.strip()
        if item == "squares":
            wanted.update(SQUARES)
        elif item == "training":
            wanted.update(k for k, *_ in rows if k.split(".")[0] in TRAINING)
        elif item in TRAINING:
            wanted.update({item, item + ".dA", item + ".dB"})
        else:
            wanted.add(item)
    unknown = wanted - {k for k, *_ in rows}
    if unknown:
        raise SystemExit(f"bench_gemm: unknown shapes {sorted(unknown)}; known: squares, training, "
                         f"{', '.join(k for k, *_ in rows)}")
    return [r for r in rows if r[0] in wanted]


def ops_name(ta, tb):
    return ("T" if ta else "N") + ("T" if tb else "N")


def operands(m, n, k, ta, tb, seed=0):
    """Stored A and B (A (K, M) when ta, B (N, K) when tb) and a C (M, N) to write into."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return a, b, np.empty((m, n), np.float32)


def time_call(fn, budget):
    """(median, min) seconds per call of fn()."""
    fn()
    fn()
    start = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - start < 0.05:
        fn()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    inner = max(1, int(0.01 / per_call))
    samples = min(200, max(5, int(budget / (inner * per_call))))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times), min(times)


# ---------------------------------------------------------------- child side: one library
def openblas_info():
    """OpenBLAS version/config and the core kernel it picked at run time, read from NumPy's copy."""
    info = {}
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("internal_api") == "openblas":
                info.update(version=pool.get("version"), core=pool.get("architecture"),
                            threads=pool.get("num_threads"))
    except ImportError:
        pass
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*.so*")):
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            try:
                get_core = getattr(lib, f"{prefix}_get_corename{suffix}")
                get_config = getattr(lib, f"{prefix}_get_config{suffix}")
                get_threads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
            except AttributeError:
                continue
            get_core.restype = get_config.restype = ctypes.c_char_p
            info.setdefault("core", get_core().decode())
            info["config"] = get_config().decode()
            info.setdefault("threads", get_threads())
            break
    return info


def child(lib, threads, shapes, budget):
    rows = {}
    info = {}
    if lib == "dlcore":
        import dlcore
        from dlcore import _C

        dlcore.set_num_threads(threads)
        info = {"isa": dlcore.cpu_isa(), "threads": dlcore.get_num_threads()}

        def make(a, b, c, ta, tb):
            return lambda: _C.gemm(a, b, c, ta, tb)
    elif lib == "numpy":
        info = openblas_info()

        def make(a, b, c, ta, tb):
            a, b = (a.T if ta else a), (b.T if tb else b)
            return lambda: np.matmul(a, b, out=c)
    else:
        import torch

        torch.set_num_threads(threads)
        info = {"version": torch.__version__, "threads": torch.get_num_threads(),
                "mkl": torch.backends.mkl.is_available()}
        for line in torch.__config__.parallel_info().splitlines():
            if "Math Kernel Library" in line:
                info["blas"] = line.strip()

        def make(a, b, c, ta, tb):
            a, b, c = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
            a, b = (a.t() if ta else a), (b.t() if tb else b)
            return lambda: torch.mm(a, b, out=c)

    for key, m, n, k, ta, tb in shapes:
        a, b, c = operands(m, n, k, ta, tb)
        fn = make(a, b, c, ta, tb)
        rows[key] = time_call(fn, budget)
        if lib == "dlcore":
            rows[key] = (*rows[key], check(a, b, c, ta, tb))
            if key == MATMUL_ROW:
                import dlcore

                ta_, tb_ = dlcore.from_numpy(a), dlcore.from_numpy(b)
                rows[key + ".matmul"] = (*time_call(lambda ta_=ta_, tb_=tb_: dlcore.matmul(ta_, tb_), budget), "")
    return {"info": info, "rows": rows}


def check(a, b, c, ta, tb):
    """'' when the last C matches float64 within the K-scaled bound 2*K*2^-24*(|A||B|), else why."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    a64, b64 = (a64.T if ta else a64), (b64.T if tb else b64)
    ref = a64 @ b64
    bound = 2 * a64.shape[1] * 2.0 ** -24 * (np.abs(a64) @ np.abs(b64)) + 1e-30
    worst = float(np.max(np.abs(c - ref) / bound))
    return "" if worst <= 1.0 else f"WRONG (error {worst:.1f}x the bound)"


# ---------------------------------------------------------------- parent side: the table
def child_env(lib, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if lib == "numpy":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    else:
        # dlcore's child calls OpenBLAS only for the float64 correctness check: keep it single
        # threaded so no OpenBLAS pool spins beside the library being timed.
        env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def run_child(lib, threads, args):
    """Runs one library's child; returns its JSON result plus `foreign`, the share of the
    machine other processes used while it ran (builds beside the benchmark skew its times)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--only", lib, "--threads", str(threads),
           "--budget", str(args.budget)]
    if args.shapes:
        cmd += ["--shapes", args.shapes]
    if args.wait_idle:
        wait_until_idle(args.wait_idle)
    b0, r0, t0 = busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=child_env(lib, threads))
    b1, r1, t1 = busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    if out.returncode != 0:
        raise RuntimeError(f"bench_gemm --only {lib} --threads {threads} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if b0 is not None:
        mine = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        result["foreign"] = max(0.0, (b1 - b0 - mine) / ((t1 - t0) * os.cpu_count()))
    return result


def merge_rounds(a, b):
    """Two rounds' results of one library's child: rows merged by best_rows, the larger
    foreign share."""
    merged = dict(a, rows=best_rows(a["rows"], b["rows"]))
    if "foreign" in a or "foreign" in b:
        merged["foreign"] = max(a.get("foreign", 0), b.get("foreign", 0))
    return merged


def available(lib):
    if lib == "numpy":
        return True
    try:
        __import__(lib)
    except ImportError:
        return False
    return True


def fmt_us(seconds):
    us = seconds * 1e6
    return f"{us:.0f}" if us >= 100 else f"{us:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}", help="comma-separated thread counts")
    parser.add_argument("--shapes", default="", help="comma-separated: squares, training, 32..2048, fc, fc.dA, ...")
    parser.add_argument("--quick", action="store_true", help="~0.05 s per measurement instead of 0.2")
    parser.add_argument("--budget", type=float, default=None, help="seconds per measurement (default 0.2)")
    parser.add_argument("--libs", default=",".join(LIBS), help="comma-separated subset of dlcore,numpy,torch")
    parser.add_argument("--wait-idle", type=float, default=30.0,
                        help="before each child, wait up to this many seconds for a quiet machine (0: don't)")
    parser.add_argument("--retries", type=int, default=1,
                        help="rerun a child that ran while other processes used > 15 %% of the machine")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the libraries' children this many times, alternating, and keep each row's "
                             "quietest round per library")
    parser.add_argument("--only", choices=LIBS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.budget is None:
        args.budget = 0.05 if args.quick else 0.2
    shapes = select_shapes(args.shapes)
    if args.only:
        print(json.dumps(child(args.only, int(args.threads), shapes, args.budget)))
        return

    import peak_probe

    thread_counts = [int(t) for t in args.threads.split(",")]
    libs = [lib for lib in args.libs.split(",") if available(lib)]
    missing = [lib for lib in args.libs.split(",") if lib not in libs]
    peak = peak_probe.load_or_measure(sorted(set(thread_counts) | {1}))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                            cwd=HERE).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "csrc"],
                           check=False, capture_output=True, text=True, cwd=HERE).stdout.strip()
    import dlcore

    print(f"# GEMM float32 | {peak_probe.cpu_model()} ({os.cpu_count()} CPUs, {platform.machine()}) | "
          f"dlcore isa {dlcore.cpu_isa()} | threads {args.threads} | commit {commit}"
          f"{' + uncommitted csrc/ edits' if dirty else ''} | "
          f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} | load avg {os.getloadavg()[0]:.2f}")
    for t in sorted(set(thread_counts) | {1}):
        isa, gf = peak_probe.fma_peak(peak, t)
        r = peak["per_thread"][str(t)]
        print(f"# peak {t} thr: {gf:.1f} GFLOP/s FMA ({isa}; {', '.join(f'{k} {v:.1f}' for k, v in r['fma_gflops'].items())}),"
              f" {r['clock_ghz']:.2f} GHz, triad {r['triad_gbs']:.1f} GB/s")
    if missing:
        print(f"# not installed, skipped: {', '.join(missing)}")

    if args.rounds < 1:
        raise SystemExit(f"bench_gemm: --rounds must be >= 1, got {args.rounds}")
    results = {}  # (lib, threads) -> child result
    for i in range(args.rounds):
        for t in thread_counts:
            for lib in libs if i % 2 == 0 else libs[::-1]:  # A B C, C B A, ...
                # A child that shared the machine with other work (> 15 % of it) is rerun, up to
                # --retries times; the run with the least foreign load is kept.
                best = None
                for _ in range(1 + args.retries):
                    r = run_child(lib, t, args)
                    if best is None or r.get("foreign", 0) < best.get("foreign", 0):
                        best = r
                    if best.get("foreign", 0) <= 0.15:
                        break
                results[lib, t] = best if (lib, t) not in results else merge_rounds(results[lib, t], best)
    for t in thread_counts[:1]:
        if ("numpy", t) in results:
            i = results["numpy", t]["info"]
            print(f"# numpy {np.__version__}: OpenBLAS core {i.get('core', '?')}, {i.get('config', '?')}"
                  f" (OPENBLAS_CORETYPE/L2_SIZE unset)")
        if ("torch", t) in results:
            i = results["torch", t]["info"]
            print(f"# torch {i['version']}: {i.get('blas', 'mkl' if i.get('mkl') else 'no MKL')}")
    foreign = {key: r["foreign"] for key, r in results.items() if "foreign" in r}
    if foreign:
        print("# CPU share other processes used while each child ran: "
              + ", ".join(f"{lib} {t} thr {100 * v:.0f} %" for (lib, t), v in foreign.items()))
        if max(foreign.values()) > 0.10:
            print("# WARNING: the machine was busy during the run; times (above all 2-thread ones) are skewed")
    rounds = (f"; best of {args.rounds} alternating rounds per library (the round with the lowest median)"
              if args.rounds > 1 else "")
    print(f"# budget {args.budget} s per measurement; GF/s from the median time; time us = median/min per call"
          f"{rounds}")
    print()

    head = ["shape M x N x K", "ops", "thr"]
    for lib in libs:
        head += [f"{lib} GF/s", f"{lib} us med/min"]
    head += ["dlcore % peak", "best base % peak", "dlcore / best", "goal GF/s", "goal met"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key, m, n, k, ta, tb in shapes:
        flop = 2.0 * m * n * k
        for t in thread_counts:
            peak_gf = peak_probe.fma_peak(peak, t)[1]
            gf = {}
            cells = [f"{key} {m}x{n}x{k}", ops_name(ta, tb), str(t)]
            note = ""
            for lib in libs:
                med, low, *rest = results[lib, t]["rows"][key]
                gf[lib] = flop / med / 1e9
                cells += [f"{gf[lib]:.1f}", f"{fmt_us(med)}/{fmt_us(low)}"]
                if rest and rest[0]:
                    note = " " + rest[0]
            base = [gf[lib] for lib in libs if lib != "dlcore"]
            best = max(base) if base else float("nan")
            ours = gf.get("dlcore", float("nan"))
            cells += [f"{100 * ours / peak_gf:.0f} %", f"{100 * best / peak_gf:.0f} %" if base else "-",
                      f"{ours / best:.2f}" if base else "-"]
            in_goal = key.split(".")[0] in TRAINING or min(m, n, k) >= GOAL_FROM
            if in_goal and base and "dlcore" in gf:
                goal = max(best, min(1.2 * best, 0.92 * peak_gf))
                cells += [f"{goal:.1f}", ("yes" if ours >= goal else "no") + note]
            else:
                cells += ["-", "-" + note]
            print("| " + " | ".join(cells) + " |")
            if key == MATMUL_ROW and "dlcore" in gf:
                med, low, _ = results["dlcore", t]["rows"][key + ".matmul"]
                gemm_med = results["dlcore", t]["rows"][key][0]
                row = [f"{key} via dlcore.matmul", ops_name(ta, tb), str(t), f"{flop / med / 1e9:.1f}",
                       f"{fmt_us(med)}/{fmt_us(low)}"]
                row += ["", ""] * (len(libs) - 1)
                row += [f"{100 * flop / med / 1e9 / peak_gf:.0f} %", "-",
                        f"+{(med - gemm_med) * 1e6:.1f} us vs _C.gemm", "-", "-"]
                print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
