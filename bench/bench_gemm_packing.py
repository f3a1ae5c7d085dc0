"""What packing op(B) costs inside one dlcore GEMM call: the call as bench_gemm.py times it,
the same product on a B packed beforehand (gemm_pack_b once, then gemm_packed per call, the
path a weight reused across calls can take), and gemm_pack_b alone.

    DLCORE_DEV_BUILD=/tmp/build PYTHONPATH=python python bench/bench_gemm_packing.py \
        [--threads 1,2] [--shapes fc,ptb,ptb.dA,lstm,...] [--budget 0.3]

Shapes are bench_gemm.py's (same names, same operands). Where one side of the product is thin
(M = 20 or 64 rows) every packed element of B feeds only 2M flops, so the per-call pack, which
reads all of B from L3 or memory, is a visible share of the call; with B pre-packed the same
shapes show what the micro-kernel alone reaches. Columns: shape, ops, thr; GFLOP/s and % of
bench/peak_probe.py's FMA peak for the plain call and for the pre-packed one (median per call);
the pack alone in us; "pack share" = 1 - pre-packed time / plain time. The process runs with
OPENBLAS_NUM_THREADS=1 so that no OpenBLAS pool spins beside dlcore's threads.
"""
import argparse
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before NumPy loads OpenBLAS

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_gemm import operands, ops_name, select_shapes, time_call

DEFAULT_SHAPES = "256,fc,lenet,im2col.dB,lstm,ptb"  # fc, lenet, lstm, ptb: with their .dA and .dB


def measure(_C, m, n, k, ta, tb, budget):
    """Median seconds per call: (gemm, gemm_packed on a pre-packed B, gemm_pack_b)."""
    a, b, c = operands(m, n, k, ta, tb)
    packed = _C.gemm_pack_b(b, tb)
    plain = time_call(lambda: _C.gemm(a, b, c, ta, tb), budget)[0]
    prepacked = time_call(lambda: _C.gemm_packed(a, packed, c, ta), budget)[0]
    pack = time_call(lambda: _C.gemm_pack_b(b, tb), budget)[0]
    return plain, prepacked, pack


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="bench_gemm.py shape names, comma-separated")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per measurement")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]

    import dlcore
    import peak_probe
    from dlcore import _C

    peak = peak_probe.load_or_measure(sorted(set(threads) | {1}))
    print(f"# dlcore GEMM, B packed per call vs beforehand | {peak_probe.cpu_model()} | isa {_C.cpu_isa()}")
    print("| shape | ops | thr | per call GF/s | % peak | B pre-packed GF/s | % peak | gemm_pack_b us | pack share |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in threads:
        dlcore.set_num_threads(t)
        fma = peak_probe.fma_peak(peak, t)[1]
        for key, m, n, k, ta, tb in select_shapes(args.shapes):
            plain, prepacked, pack = measure(_C, m, n, k, ta, tb, args.budget)
            flop = 2.0 * m * n * k
            print(f"| {key} {m}x{n}x{k} | {ops_name(ta, tb)} | {t} | {flop / plain / 1e9:.1f} | "
                  f"{100 * flop / plain / 1e9 / fma:.0f} % | {flop / prepacked / 1e9:.1f} | "
                  f"{100 * flop / prepacked / 1e9 / fma:.0f} % | {pack * 1e6:.0f} | {100 * (1 - prepacked / plain):.0f} % |")


if __name__ == "__main__":
    main()
