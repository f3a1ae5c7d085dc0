"""Runs one benchmark once per library, each in its own process, and returns the results.

dlcore (GNU OpenMP) and PyTorch (its own OpenMP runtime) each keep worker threads spinning
after a parallel region; in one process on a 2-core machine they steal each other's cores
and both slow down. So a benchmark times each library in a fresh child process, back to back
in the same run, and the parent prints the ratio. `wait_until_idle` and `busy_cpu_seconds` let
a benchmark start on a quiet machine and report how much CPU other processes took meanwhile.
"""
import json
import os
import subprocess
import sys
import time


def run_child(script, lib, argv):
    """Runs `script --only lib argv...` and returns the JSON dict it prints on its last line."""
    out = subprocess.run([sys.executable, script, "--only", lib, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{script} --only {lib} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def busy_cpu_seconds():
    """CPU seconds all processes have spent busy since boot (/proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(max_wait):
    """Waits (up to max_wait s) for a 1 s window in which other processes use < 10 % of the CPUs."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = busy_cpu_seconds()
        if b0 is None:
            return 0.0
        time.sleep(1.0)
        share = (busy_cpu_seconds() - b0) / os.cpu_count()
        if share < 0.10 or time.monotonic() > deadline:
            return share


def best_rows(a, b):
    """Two rounds' rows of one library's child merged (the benchmarks' --rounds): per timed row
    [median, min, *rest] the round with the lower median, a failed check string (rest[0], as
    bench_gemm reports it) from either round kept; a dict of numbers (bench_conv's check
    errors) keeps the larger of each."""
    out = {}
    for key, va in a.items():
        vb = b[key]
        if isinstance(va, dict):
            out[key] = {n: max(va[n], vb[n]) for n in va}
        else:
            row = list(va if va[0] <= vb[0] else vb)
            if len(row) > 2:
                row[2] = va[2] or vb[2]
            out[key] = row
    return out

