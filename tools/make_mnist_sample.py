"""Writes the MNIST sample shipped in the package: the first 5000 train and first 1000
test images and labels, as gzip'd idx files the regular loader reads.

    python3 tools/make_mnist_sample.py [--src shared/data/mnist] [--out python/dlcore/datasets/sample]

First-N (not stratified) keeps the sample a prefix of the real files, so "first labels
5, 0 / 7, 2" hold for both. Output is byte-reproducible for a given zlib: gzip level 9,
mtime 0, no file name in the header.
"""
import argparse
import gzip
import os
import struct

N_TRAIN, N_TEST = 5000, 1000


def read(path):
    with gzip.open(path, "rb") as f:
        return f.read()


def cut(src, name, n):
    raw = read(os.path.join(src, name + ".gz"))
    magic, count = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        assert len(raw) == 16 + count * rows * cols, f"{name}: size does not match its header"
        return struct.pack(">IIII", magic, n, rows, cols) + raw[16:16 + n * rows * cols]
    assert magic == 2049 and len(raw) == 8 + count, f"{name}: not an idx1 label file"
    return struct.pack(">II", magic, n) + raw[8:8 + n]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("DLCORE_DATA", os.path.join(here, "..", "shared", "data"))
    parser.add_argument("--src", default=os.path.join(data, "mnist"), help="folder with the full MNIST .gz files")
    parser.add_argument("--out", default=os.path.join(here, "..", "python", "dlcore", "datasets", "sample"),
                        help="where to write the sample")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for split, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = f"{split}-{kind}"
            data = gzip.compress(cut(args.src, name, n), compresslevel=9, mtime=0)
            path = os.path.join(args.out, name + ".gz")
            with open(path, "wb") as f:
                f.write(data)
            total += len(data)
            print(f"{path}: {len(data):,} bytes")
    print(f"total {total:,} bytes")


if __name__ == "__main__":
    main()
