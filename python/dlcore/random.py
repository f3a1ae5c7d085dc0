"""The seedable generator behind randn/rand/dropout/shuffling: ``dlcore.manual_seed(s)``."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seeds dlcore's default generator (initialisation, randn/rand, dropout masks, shuffles)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def generator():
    """The current default NumPy Generator."""
    return _generator


def next_seed():
    """A fresh 64-bit seed for a counter-based kernel RNG (dropout)."""
    return int(_generator.integers(0, 2**63 - 1))
