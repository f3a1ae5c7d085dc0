"""Build-time guard for the per-ISA kernel objects (run by CMake after linking _C).

The avx2/avx512 objects are compiled with wider-ISA flags. A weak (COMDAT) function they define
outside their own namespace dlcore::cpu::<isa> -- typically an out-of-line instantiation of an
inline library template -- is merged by the linker with the copies from other translation units,
and the copy it keeps may use AVX-512 instructions: the generic path would then crash with an
illegal instruction on a CPU without AVX-512. This script fails the build naming such symbols.

usage: check_isa_symbols.py NM isa=obj1|obj2 isa=obj...
"""
import subprocess
import sys


def weak_functions(nm, objects):
    out = subprocess.run([nm, "--defined-only", *objects], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "W":
            yield parts[2]


def main(argv):
    nm, groups = argv[1], argv[2:]
    bad = []
    for group in groups:
        isa, objects = group.split("=", 1)
        if isa == "generic":
            continue
        own = f"N6dlcore3cpu{len(isa)}{isa}"  # the mangled prefix of namespace dlcore::cpu::<isa>
        bad += [(isa, s) for s in weak_functions(nm, [o for o in objects.split("|") if o]) if own not in s]
    if bad:
        names = "\n".join(f"  [{isa}] {s}" for isa, s in sorted(set(bad)))
        print(f"ISA isolation: weak functions defined outside their ISA namespace:\n{names}\n"
              "Move them into dlcore::cpu::DLCORE_ISA (or keep them inline/static).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
