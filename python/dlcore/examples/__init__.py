"""Runnable examples: ``python -m dlcore.examples.lenet5``."""
