"""End to end: a ConvNet learns MNIST (the embedded sample) through the real kernels,
layers, optimiser and data loader, and its checkpoint round-trips."""
import numpy as np

import dlcore
from dlcore import optim
from dlcore.data import DataLoader
from dlcore.datasets import MNIST
from dlcore.examples.lenet5 import LeNet5, evaluate


def test_lenet5_learns_the_embedded_mnist_sample(tmp_path):
    dlcore.manual_seed(0)
    train_set, test_set = MNIST.sample(train=True), MNIST.sample(train=False)
    model = LeNet5()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
    for _ in range(2):
        for images, labels in loader:
            loss = dlcore.cross_entropy(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    accuracy = evaluate(model, DataLoader(test_set, batch_size=500))
    # 2 epochs over 5000 images: measured ~0.95; chance is 0.10.
    assert accuracy >= 0.90, f"LeNet-5 reached only {accuracy:.3f} on the sample test set"

    path = tmp_path / "lenet5.safetensors"
    dlcore.save(model.state_dict(), str(path))
    restored = LeNet5()
    restored.load_state_dict(dlcore.load(str(path)))
    for (name, a), (_, b) in zip(model.state_dict().items(), restored.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert evaluate(restored, DataLoader(test_set, batch_size=500)) == accuracy
