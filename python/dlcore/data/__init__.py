"""Datasets and batching, as torch.utils.data."""
from dlcore.data.dataloader import DataLoader, default_collate
from dlcore.data.dataset import Dataset, Subset, TensorDataset, random_split

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]
