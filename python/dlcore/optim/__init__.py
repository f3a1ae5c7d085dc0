"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules, as torch.optim."""
from dlcore.optim import lr_scheduler
from dlcore.optim.adam import Adam, AdamW
from dlcore.optim.optimizer import Optimizer
from dlcore.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
