"""LeNet-5 on MNIST (LeCun et al. 1998; the ConvNet of the Nature review's Fig. 2).

    python -m dlcore.examples.lenet5 [--data DIR] [--epochs N] [--device cuda]

conv5x5 6 (pad 2) -> ReLU -> max-pool 2 -> conv5x5 16 -> ReLU -> max-pool 2 -> 120 -> 84 -> 10,
trained with Adam and a cosine learning-rate schedule. With the full MNIST set (a data
directory holding mnist/, from --data or DLCORE_DATA) it reaches >= 98.9 % test accuracy; with
no data directory it trains on the small sample shipped inside the package, offline.
"""
import argparse
import hashlib
import math
import os
import time

from tqdm import tqdm

import numpy as np

import dlcore
from dlcore import nn, optim
from dlcore.data import DataLoader
from dlcore.datasets import MNIST


class LeNet5(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (N, 6, 14, 14)
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),  # (N, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (N, 400)
            nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):  # x (N, 1, 28, 28)
        return self.classifier(self.features(x))


def load_data(data_dir):
    """(train, test, description): the full MNIST set when data_dir holds it, else the sample."""
    if data_dir:
        try:
            return MNIST(data_dir, train=True), MNIST(data_dir, train=False), f"MNIST from {data_dir}"
        except FileNotFoundError as e:
            print(f"full MNIST not found ({e}); using the embedded sample")
    return MNIST.sample(train=True), MNIST.sample(train=False), "the embedded MNIST sample"


def evaluate(model, loader, device="cpu"):
    """Test accuracy in [0, 1]."""
    model.eval()
    correct = total = 0
    with dlcore.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            correct += (model(images).argmax(1) == labels).sum().item()
            total += len(labels)
    model.train()
    return correct / total


def _where(device):
    if dlcore.device(device).type == "cuda":
        return f"device {dlcore.cuda.get_device_name(device)}"
    return f"cpu isa {dlcore.cpu_isa()}, {dlcore.get_num_threads()} threads"


def train(epochs=10, batch_size=64, lr=2e-3, data_dir=None, seed=0, checkpoint=None, progress=True, device="cpu"):
    """Trains LeNet-5 and returns (model, per-epoch records). Each record holds the epoch's
    loss digest (SHA-256 of its per-batch float32 losses): two runs with one seed and device
    give the same digests when training is deterministic."""
    dlcore.manual_seed(seed)
    if dlcore.device(device).type == "cuda":
        dlcore.cuda.manual_seed(seed)
    train_set, test_set, source = load_data(data_dir)
    print(f"LeNet-5 on {source}: {len(train_set)} train / {len(test_set)} test images; {_where(device)}")
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    test_loader = DataLoader(test_set, batch_size=1000)
    model = LeNet5().to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    steps = epochs * len(train_loader)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    records, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        total_loss, batches, losses = 0.0, 0, []
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress or None)
        for images, labels in bar:
            images, labels = images.to(device), labels.to(device)
            loss = dlcore.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            value = loss.item()
            losses.append(value)
            if not math.isfinite(value):
                raise FloatingPointError(f"lenet5: the loss became {value} at epoch {epoch}, batch {batches + 1}; "
                                         f"try a smaller --lr (now {lr})")
            total_loss += value
            batches += 1
            if batches % 50 == 0:
                bar.set_postfix(loss=f"{total_loss / batches:.4f}")
        accuracy = evaluate(model, test_loader, device)
        elapsed = time.perf_counter() - start
        digest = hashlib.sha256(np.asarray(losses, dtype=np.float32).tobytes()).hexdigest()[:16]
        records.append({"epoch": epoch, "train_loss": total_loss / batches, "test_accuracy": accuracy,
                        "seconds": elapsed, "loss_digest": digest})
        print(f"epoch {epoch:2d}  train loss {total_loss / batches:.4f}  test accuracy {100 * accuracy:.2f} %"
              f"  ({elapsed:.0f} s)  loss digest {digest}")
    if checkpoint:
        os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
        dlcore.save(model.state_dict(), checkpoint)
        print(f"checkpoint saved to {checkpoint}")
    return model, records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("DLCORE_DATA"),
                        help="data directory holding mnist/ (default: $DLCORE_DATA; else the embedded sample)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument("--checkpoint", default="checkpoints/lenet5_mnist.safetensors")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        dlcore.set_num_threads(args.threads)
    _, records = train(args.epochs, args.batch_size, args.lr, args.data, args.seed, args.checkpoint,
                       progress=not args.no_progress, device=args.device)
    best = records[-1]
    print(f"final test accuracy {100 * best['test_accuracy']:.2f} % after {best['epoch']} epochs, "
          f"{best['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
