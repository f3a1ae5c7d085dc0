"""LeNet-5 on MNIST: the README's main job. Same as `python -m dlcore.examples.lenet5`.

    python examples/lenet5_mnist.py --data ../shared/data --epochs 10

Measured result: see README.md ("LeNet-5 on MNIST").
"""
from dlcore.examples.lenet5 import main

if __name__ == "__main__":
    raise SystemExit(main())
