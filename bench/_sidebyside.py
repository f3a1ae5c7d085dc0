"""Runs one benchmark once per library, each in its own process, and returns the results.

dlcore (GNU OpenMP) and PyTorch (its own OpenMP runtime) each keep worker threads spinning
after a parallel region; in one process on a 2-core machine they steal each other's cores
and both slow down. So a benchmark times each library in a fresh child process, back to back
in the same run, and the parent prints the ratio.
"""
import json
import subprocess
import sys


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
