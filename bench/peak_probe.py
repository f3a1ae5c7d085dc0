"""Measures this machine's float32 FMA peak per ISA and its memory bandwidth, on 1 and N threads.

    python bench/peak_probe.py [--threads 1,2] [--refresh] [--json]

Every "% of peak" a dlcore benchmark prints divides by these numbers, measured on the machine
that runs it rather than taken from a data sheet (clocks under a hypervisor are not the
label's). The probe is bench/peak_probe.cpp, compiled here with the system g++ into a temp dir
and run once per thread count as a subprocess that prints JSON:

  - FMA GFLOP/s per ISA the CPU reports (AVX2 256-bit and AVX-512 512-bit FMA, 12 independent
    accumulator chains per thread, each thread on its own loop), best of 5 runs of ~0.2 s;
  - the core clock, from a chain of dependent 1-cycle integer adds, so FLOP/cycle can be read off;
  - STREAM-style copy (8 B/element) and triad (12 B/element) GB/s over three 256 MiB arrays,
    8x the 32 MiB L3 here, best of 5.

Each thread count is probed 3 times and the best value of each field kept (a peak is a maximum,
and on a shared machine one run can lose a core to a build running beside it).

Expected on a Zen 4 core: 32 FLOP/cycle with either ISA (two 256-bit FMA pipes; a 512-bit FMA
is issued as two halves). On a Xeon with two 512-bit FMA units AVX-512 doubles AVX2.

Results are cached in the system temp dir as dlcore-peak-<hash>.json, keyed by CPU model,
thread count and the probe's source, so bench_gemm.py reuses them; --refresh re-measures.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "peak_probe.cpp")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cache_path(threads):
    with open(SOURCE, "rb") as f:
        src = f.read()
    key = f"{cpu_model()}|{os.cpu_count()}|{','.join(map(str, threads))}|".encode() + src
    return os.path.join(tempfile.gettempdir(), f"dlcore-peak-{hashlib.sha1(key).hexdigest()[:12]}.json")


def _build(workdir):
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise RuntimeError("peak_probe: no C++ compiler found (set CXX or install g++)")
    exe = os.path.join(workdir, "peak_probe")
    # Plain -O2: the ISA of each loop comes from target attributes in the source, so the
    # binary runs on any x86-64 and only calls the loops the CPU reports.
    cmd = [cxx, "-O2", "-fopenmp", "-o", exe, SOURCE]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"peak_probe: {' '.join(cmd)} failed:\n{out.stderr}")
    return exe


def measure(threads, array_mib=256, rounds=3):
    """Runs the probe once per thread count; returns the result dict (see module doc)."""
    flags = cpu_flags()
    with tempfile.TemporaryDirectory(prefix="dlcore-peak-") as workdir:
        exe = _build(workdir)
        per_thread = {}
        for n in threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(n))
            best = None
            # A peak is a maximum: on a shared machine (builds running beside us) one run can
            # lose a core for a while, so keep the best of `rounds` runs, field by field.
            for _ in range(rounds):
                out = subprocess.run([exe, str(n), str(array_mib)], capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    raise RuntimeError(f"peak_probe {n} failed:\n{out.stderr}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if best is None:
                    best = r
                    continue
                for k in ("clock_ghz", "copy_gbs", "triad_gbs"):
                    best[k] = max(best[k], r[k])
                for isa, v in r["fma_gflops"].items():
                    best["fma_gflops"][isa] = max(best["fma_gflops"][isa], v)
            per_thread[str(n)] = best
    isas = sorted({isa for r in per_thread.values() for isa in r["fma_gflops"]})
    # The C++ side asks CPUID via __builtin_cpu_supports; /proc/cpuinfo only cross-checks it.
    if flags and "avx512f" not in flags:
        isas = [i for i in isas if i != "avx512"]
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": [int(t) for t in per_thread],
        "isas": isas,
        "per_thread": per_thread,
        "loadavg_at_measure": os.getloadavg()[0],
    }


def load_or_measure(threads, refresh=False):
    """The cached probe result for these thread counts, measuring it first if needed."""
    threads = sorted(set(int(t) for t in threads))
    path = _cache_path(threads)
    if not refresh and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    result = measure(threads)
    tmp = path + f".{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, path)
    return result


def fma_peak(result, threads):
    """(isa, GFLOP/s) of the fastest ISA on `threads` threads."""
    fma = result["per_thread"][str(threads)]["fma_gflops"]
    isa = max(fma, key=fma.get)
    return isa, fma[isa]


def summary_lines(result):
    lines = [f"# peak probe | {result['cpu']} | {result['cpu_count']} CPUs | isas {', '.join(result['isas'])}"]
    lines.append("| threads | clock GHz | " + " | ".join(f"{i} FMA GFLOP/s (FLOP/cycle/core)" for i in result["isas"])
                 + " | copy GB/s | triad GB/s |")
    lines.append("|---" * (3 + len(result["isas"]) + 1) + "|")
    for t in result["threads"]:
        r = result["per_thread"][str(t)]
        ghz = r["clock_ghz"]
        cells = [f"{r['fma_gflops'][i]:.1f} ({r['fma_gflops'][i] / ghz / t:.1f})" for i in result["isas"]]
        lines.append(f"| {t} | {ghz:.2f} | " + " | ".join(cells) + f" | {r['copy_gbs']:.1f} | {r['triad_gbs']:.1f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}",
                        help="comma-separated thread counts (default: 1 and the CPU count)")
    parser.add_argument("--refresh", action="store_true", help="re-measure instead of reading the cache")
    parser.add_argument("--json", action="store_true", help="print the raw JSON instead of a table")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    result = load_or_measure(threads, refresh=args.refresh)
    one, top = result["threads"][0], result["threads"][-1]
    if top > one and fma_peak(result, top)[1] < 0.8 * top / one * fma_peak(result, one)[1]:
        print(f"warning: {top}-thread FMA peak scales below 80 % of linear: was the machine busy? "
              "(rerun with --refresh when it is idle)", file=sys.stderr)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print("\n".join(summary_lines(result)))
        print(f"(cache: {_cache_path(sorted(set(threads)))})")


if __name__ == "__main__":
    main()
