"""``python -m dlcore.info``: version, CPU, chosen ISA, threads, kernels, CUDA status."""
import dlcore
from dlcore import _C


def describe():
    lines = [
        f"dlcore {dlcore.__version__}",
        f"cpu: {_C.cpu_brand()}",
        f"cpu isa: {_C.cpu_isa()} (best supported: {_C.best_cpu_isa()}; compiled: {', '.join(_C.compiled_isas())};"
        " lower it with DLCORE_CPU_ISA=generic|avx2|avx512)",
        f"threads: {dlcore.get_num_threads()}",
        f"kernels: {', '.join(_C.kernel_slots())}",
        f"cuda built: {dlcore.cuda.is_built()}, available: {dlcore.cuda.is_available()}",
    ]
    if dlcore.cuda.is_available():
        lines += [f"cuda device {i}: {dlcore.cuda.get_device_name(i)}" for i in range(dlcore.cuda.device_count())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe())
