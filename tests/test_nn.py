"""dlcore.nn: registration and naming, state_dict, modes, default initialisation (checked
statistically), shapes and values through the layers, repr, and a small MLP that learns."""
import math
import time
from collections import OrderedDict

import numpy as np
import pytest

import dlcore
from dlcore import nn
from dlcore.nn import functional as F
from dlcore.nn import init
from helpers import assert_close


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.scale = nn.Parameter(dlcore.ones(3))
        self.register_buffer("running", dlcore.zeros(3))
        self.register_buffer("scratch", dlcore.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = Block()
        self.b.fc = self.a.fc  # shared: must be listed once
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(3, 2))

    def forward(self, x):
        return self.head(self.a(x) + self.b(x))


# ---- registration ----------------------------------------------------------------------------
def test_parameter_is_a_leaf_tensor_in_the_graph():
    p = nn.Parameter(dlcore.randn(2, 3))
    assert isinstance(p, dlcore.Tensor) and isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf
    (p * 2.0).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((2, 3), 2.0, dtype=np.float32))
    assert not isinstance(dlcore.randn(2, requires_grad=True), nn.Parameter)
    base = dlcore.randn(3)
    q = nn.Parameter(base)
    assert q._data is base._data  # shares storage like torch.nn.Parameter
    with pytest.raises(TypeError, match="float"):
        nn.Parameter(dlcore.tensor([1, 2]))


def test_named_parameters_dotted_unique():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["a.scale", "a.fc.weight", "a.fc.bias", "b.scale", "head.1.weight", "head.1.bias"]
    assert len(list(net.parameters())) == 6
    assert len({id(p) for p in net.parameters()}) == 6
    assert [n for n, _ in net.named_children()] == ["a", "b", "head"]
    assert [type(m).__name__ for m in net.children()] == ["Block", "Block", "Sequential"]
    mods = [n for n, _ in net.named_modules()]
    assert mods == ["", "a", "a.fc", "b", "head", "head.0", "head.1"]
    assert [n for n, _ in net.named_buffers()] == ["a.running", "a.scratch", "b.running", "b.scratch"]
    assert [n for n, _ in net.a.named_parameters(recurse=False)] == ["scale"]


def test_attribute_assignment_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = dlcore.randn(2, 2)  # a plain Tensor cannot replace a Parameter
    m.weight = nn.Parameter(dlcore.randn(2, 2))
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    m.extra = dlcore.randn(3)  # plain tensors are plain attributes
    assert "extra" not in dict(m.named_parameters())

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(dlcore.randn(2))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        NoInit()
    with pytest.raises(KeyError):
        m.register_buffer("weight", dlcore.zeros(2))
    del m.weight
    assert list(m.named_parameters()) == []


def test_autograd_reaches_parameters():
    net = Net()
    out = net(dlcore.randn(5, 4)).sum()
    out.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net(dlcore.randn(5, 4)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(not p.grad._data.any() for p in net.parameters())


# ---- state dict --------------------------------------------------------------------------------
def test_state_dict_round_trip():
    dlcore.manual_seed(0)
    src, dst = Net(), Net()
    sd = src.state_dict()
    assert list(sd) == ["a.scale", "a.running", "a.fc.weight", "a.fc.bias", "b.scale", "b.running",
                        "b.fc.weight", "b.fc.bias", "head.1.weight", "head.1.bias"]
    assert isinstance(sd, OrderedDict)
    assert all(type(v) is dlcore.Tensor and not v.requires_grad for v in sd.values())
    x = dlcore.randn(3, 4)
    assert not np.array_equal(src(x).detach().numpy(), dst(x).detach().numpy())
    weight = dst.a.fc.weight
    result = dst.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.a.fc.weight is weight  # loaded in place: optimizers keep working
    np.testing.assert_array_equal(src(x).detach().numpy(), dst(x).detach().numpy())
    sd["a.scale"]._data[0] = 42.0  # state_dict shares storage with the module (as in torch)
    assert src.a.scale._data[0] == 42.0


def test_load_state_dict_errors():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    good = {k: v.clone() for k, v in m.state_dict().items()}
    bad = dict(good)
    bad["0.weight"] = dlcore.zeros(5, 3)
    before = m[1].weight._data.copy()
    bad["1.weight"] = dlcore.ones(2, 4)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0\.weight.*\(5, 3\).*\(4, 3\)"):
        m.load_state_dict(bad)
    np.testing.assert_array_equal(m[1].weight._data, before)  # nothing copied on error
    partial = dict(good)
    del partial["1.bias"]
    partial["extra.weight"] = dlcore.zeros(1)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*'1\.bias'"):
        m.load_state_dict(partial)
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*'extra\.weight'"):
        m.load_state_dict(partial)
    missing, unexpected = m.load_state_dict(partial, strict=False)
    assert missing == ["1.bias"] and unexpected == ["extra.weight"]
    m.load_state_dict({k: v.numpy() for k, v in good.items()})  # NumPy arrays are accepted too


def test_train_eval_recursive():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = dlcore.randn(50, 2)
    drop = net[1][0]
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())  # identity in eval mode
    net.train()
    assert all(m.training for m in net.modules())
    y = drop(dlcore.ones(1000, 10)).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6


def test_to_device_and_dtype():
    m = nn.Linear(3, 2)
    assert m.to("cpu") is m and m.cpu() is m
    with pytest.raises(RuntimeError, match="cuda:7"):  # a device that does not exist, with or without a GPU
        m.to("cuda:7")
    w = m.weight
    m.double()
    assert m.weight is w and w.dtype == dlcore.float64
    assert m(dlcore.randn(4, 3, dtype=dlcore.float64)).dtype == dlcore.float64


# ---- initialisation (statistical) -------------------------------------------------------------
def _check_uniform(arr, bound, what):
    a = np.asarray(arr, dtype=np.float64).ravel()
    assert np.abs(a).max() <= bound * (1 + 1e-6), f"{what}: value outside +-{bound}"
    assert np.abs(a).max() > 0.95 * bound, f"{what}: range much narrower than +-{bound}"
    n = a.size
    assert abs(a.mean()) < 4 * bound / math.sqrt(3 * n), f"{what}: mean {a.mean()} not ~0"
    var = bound**2 / 3  # U(-b, b); std of the sample variance ~ var * sqrt(4/5 / n)
    assert abs(a.var() - var) < 5 * var * math.sqrt(0.8 / n), f"{what}: variance {a.var()} != {var}"


def test_default_init_like_torch():
    dlcore.manual_seed(1)
    lin = nn.Linear(400, 300)
    _check_uniform(lin.weight._data, 1 / 20, "Linear.weight")
    _check_uniform(lin.bias._data, 1 / 20, "Linear.bias")
    conv = nn.Conv2d(3, 64, 5)  # fan_in = 3 * 25
    _check_uniform(conv.weight._data, 1 / math.sqrt(75), "Conv2d.weight")
    grouped = nn.Conv2d(8, 16, 3, groups=4)  # fan_in = 2 * 9
    assert grouped.weight.shape == (16, 2, 3, 3)
    assert np.abs(grouped.weight._data).max() <= 1 / math.sqrt(18)
    cell = nn.LSTMCell(30, 100)
    for name, p in cell.named_parameters():
        _check_uniform(p._data, 1 / 10, f"LSTMCell.{name}")
    emb = nn.Embedding(1000, 64, padding_idx=3)
    w = emb.weight._data
    assert not w[3].any()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01


def test_init_functions():
    dlcore.manual_seed(2)
    t = nn.Parameter(dlcore.empty(200, 300))
    init.xavier_uniform_(t)
    _check_uniform(t._data, math.sqrt(6 / 500), "xavier_uniform_")
    init.kaiming_uniform_(t, nonlinearity="relu")
    _check_uniform(t._data, math.sqrt(6 / 300), "kaiming_uniform_")
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t._data.std() - math.sqrt(2 / 200)) < 0.003
    init.zeros_(t)
    assert not t._data.any()
    init.constant_(t, 0.5)
    assert (t._data == 0.5).all()
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError):
        init.kaiming_uniform_(nn.Parameter(dlcore.empty(5)))
    with pytest.raises(ValueError):
        init.calculate_gain("swish")


def test_init_is_seeded():
    dlcore.manual_seed(7)
    a = nn.Linear(5, 5).weight._data.copy()
    dlcore.manual_seed(7)
    np.testing.assert_array_equal(nn.Linear(5, 5).weight._data, a)


# ---- shapes and values through the layers -------------------------------------------------
def test_linear_matches_numpy(rng):
    lin = nn.Linear(7, 5)
    x = rng.standard_normal((2, 3, 7)).astype(np.float32)
    out = lin(dlcore.tensor(x))
    assert out.shape == (2, 3, 5)
    w, b = lin.weight._data.astype(np.float64), lin.bias._data.astype(np.float64)
    assert_close(out.detach().numpy(), x.astype(np.float64) @ w.T + b, what="Linear")
    assert nn.Linear(7, 5, bias=False)(dlcore.tensor(x)).shape == (2, 3, 5)


def test_conv_pool_shapes():
    x = dlcore.randn(2, 3, 28, 28)
    assert nn.Conv2d(3, 8, 5)(x).shape == (2, 8, 24, 24)
    assert nn.Conv2d(3, 8, 3, stride=2, padding=1)(x).shape == (2, 8, 14, 14)
    assert nn.Conv2d(3, 8, 3, padding="same")(x).shape == (2, 8, 28, 28)
    assert nn.Conv2d(3, 8, (3, 5), bias=False)(x).shape == (2, 8, 26, 24)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 14, 14)
    assert nn.MaxPool2d(3, stride=2, padding=1)(x).shape == (2, 3, 14, 14)
    assert nn.AvgPool2d(2)(x).shape == (2, 3, 14, 14)
    assert nn.AvgPool2d(3, stride=1)(x).shape == (2, 3, 26, 26)
    assert nn.Flatten()(x).shape == (2, 3 * 28 * 28)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)


def test_lenet_forward_backward():
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 10),
    )
    x = dlcore.randn(4, 1, 28, 28)
    logits = net(x)
    assert logits.shape == (4, 10)
    nn.CrossEntropyLoss()(logits, dlcore.tensor([0, 1, 2, 3])).backward()
    assert net[0].weight.grad.shape == (6, 1, 5, 5)


def test_lstm_cell_and_embedding(rng):
    cell = nn.LSTMCell(6, 4)
    x = dlcore.tensor(rng.standard_normal((3, 6)).astype(np.float32))
    h, c = cell(x)
    assert h.shape == c.shape == (3, 4)
    h2, c2 = cell(x, (h, c))
    assert h2.shape == (3, 4)
    # NumPy reference of one step, gate order (i, f, g, o)
    p = {n: t._data.astype(np.float64) for n, t in cell.named_parameters()}
    h0, c0 = h.detach().numpy().astype(np.float64), c.detach().numpy().astype(np.float64)
    gates = x.numpy() @ p["weight_ih"].T + p["bias_ih"] + h0 @ p["weight_hh"].T + p["bias_hh"]
    i, f, g, o = np.split(gates, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c_ref = sig(f) * c0 + sig(i) * np.tanh(g)
    assert_close(c2.detach().numpy(), c_ref, what="LSTMCell c")
    assert_close(h2.detach().numpy(), sig(o) * np.tanh(c_ref), what="LSTMCell h")
    hu, cu = cell(x[0])
    assert hu.shape == cu.shape == (4,)
    emb = nn.Embedding(10, 3)
    assert emb(dlcore.tensor([[1, 2], [3, 4]])).shape == (2, 2, 3)


def test_losses_and_softmax_modules():
    logits = dlcore.randn(5, 4)
    target = dlcore.tensor([0, 3, 1, 1, 2])
    ce = nn.CrossEntropyLoss()(logits, target).item()
    nll = nn.NLLLoss()(nn.LogSoftmax(dim=1)(logits), target).item()
    assert ce == pytest.approx(nll, rel=1e-5)
    assert nn.CrossEntropyLoss(reduction="none")(logits, target).shape == (5,)
    assert_close(nn.Softmax(dim=1)(logits).numpy().sum(1), np.ones(5), what="softmax rows")
    assert nn.MSELoss()(logits, logits).item() == 0.0
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    assert F.relu is dlcore.ops.relu and F.cross_entropy is dlcore.ops.cross_entropy


# ---- repr ----------------------------------------------------------------------------------------
EXPECTED_REPR = """Sequential(
  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
  (1): ReLU()
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): Flatten(start_dim=1, end_dim=-1)
  (4): Sequential(
    (0): Linear(in_features=1176, out_features=10, bias=True)
    (1): Dropout(p=0.5, inplace=False)
  )
  (5): LogSoftmax(dim=1)
)"""


def test_repr_like_torch():
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Sequential(nn.Linear(1176, 10), nn.Dropout()), nn.LogSoftmax(dim=1))
    assert repr(net) == EXPECTED_REPR
    assert repr(nn.LSTMCell(3, 4)) == "LSTMCell(3, 4)"
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.Conv2d(2, 4, 3, bias=False, groups=2)) == \
        "Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), groups=2, bias=False)"
    torch = pytest.importorskip("torch")
    tnet = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(),
                               torch.nn.Sequential(torch.nn.Linear(1176, 10), torch.nn.Dropout()),
                               torch.nn.LogSoftmax(dim=1))
    assert repr(tnet) == EXPECTED_REPR


def test_sequential_container():
    seq = nn.Sequential(OrderedDict(fc=nn.Linear(2, 3), act=nn.Tanh()))
    assert [n for n, _ in seq.named_parameters()] == ["fc.weight", "fc.bias"]
    assert len(seq) == 2 and isinstance(seq[-1], nn.Tanh) and isinstance(seq[:1], nn.Sequential)
    seq.append(nn.Linear(3, 1))
    assert seq(dlcore.randn(4, 2)).shape == (4, 1)
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(list(ml.parameters())) == 6 and len(ml) == 3


def test_deepcopy_keeps_parameters():
    import copy
    import pickle

    net = Net()
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        names = [n for n, _ in clone.named_parameters()]
        assert names == [n for n, _ in net.named_parameters()]
        assert all(isinstance(p, nn.Parameter) for p in clone.parameters())
        assert clone.a.fc.weight is not net.a.fc.weight
        assert clone.b.fc is clone.a.fc  # sharing survives the copy
        np.testing.assert_array_equal(clone.a.fc.weight._data, net.a.fc.weight._data)


# ---- learning ------------------------------------------------------------------------------------
def two_moons(n, rng, noise=0.1):
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], 1) + noise * rng.standard_normal((n, 2))
    return pts.astype(np.float32), (~upper).astype(np.int64)


def test_mlp_learns_two_moons():
    """A 2-32-32-2 MLP trained with Adam reaches >= 95 % held-out accuracy on two moons."""
    from dlcore import optim
    from dlcore.data import DataLoader, TensorDataset

    rng = np.random.default_rng(0)
    x_train, y_train = two_moons(1000, rng)
    x_test, y_test = two_moons(500, rng)
    dlcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(30):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
    elapsed = time.perf_counter() - start
    model.eval()
    with dlcore.no_grad():
        pred = model(dlcore.tensor(x_test)).argmax(1).numpy()
    acc = (pred == y_test).mean()
    assert acc >= 0.95, f"two-moons accuracy {acc:.3f} < 0.95 (final loss {loss.item():.4f})"
    assert elapsed < 20, f"training took {elapsed:.1f} s"
