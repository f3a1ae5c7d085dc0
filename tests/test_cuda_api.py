"""The user-facing CUDA API: moving tensors and modules, device= on creation, mixed-device
errors, the allocator's statistics and out-of-memory behaviour, the GPU seed, and the same
autograd on both devices. GPU tests skip where there is no device; the no-device behaviour
(clear errors) is checked everywhere else."""
import gc

import numpy as np
import pytest

import dlcore
import dlcore.nn.functional as F
from dlcore import nn

no_gpu = pytest.mark.skipif(dlcore.cuda.is_available(), reason="checks the behaviour without a CUDA device")


@no_gpu
def test_without_a_device_moving_to_cuda_raises_a_clear_error():
    t = dlcore.ones(3)
    with pytest.raises(RuntimeError, match="is_available"):
        t.to("cuda")
    with pytest.raises(RuntimeError, match="is_available"):
        dlcore.zeros(2, 3, device="cuda")
    with pytest.raises(RuntimeError, match="is_available"):
        nn.Linear(3, 2).cuda()
    with pytest.raises(RuntimeError, match="CUDA"):
        dlcore.cuda.memory_allocated()
    assert t.cpu() is t and t.to("cpu") is t and t.device == dlcore.device("cpu")


def test_cuda_seed_is_validated_and_reproducible():
    dlcore.cuda.manual_seed(7)
    first = [dlcore.cuda.next_seed() for _ in range(3)]
    dlcore.cuda.manual_seed(7)
    assert [dlcore.cuda.next_seed() for _ in range(3)] == first
    assert len(set(first)) == 3
    with pytest.raises(ValueError, match="manual_seed"):
        dlcore.cuda.manual_seed(-1)


def test_roundtrip_keeps_values_dtype_and_device(cuda, rng):
    for dtype in (np.float32, np.float64, np.int64, np.bool_):
        host = (rng.standard_normal((3, 5)) * 4).astype(dtype)
        t = dlcore.tensor(host).to(cuda)
        assert t.device == dlcore.device("cuda:0") and t.is_cuda and t.dtype == host.dtype
        np.testing.assert_array_equal(t.cpu().numpy(), host)
    assert "device='cuda:0'" in repr(t)
    with pytest.raises(TypeError, match="cpu"):
        t.numpy()


def test_creation_functions_take_a_device(cuda):
    assert dlcore.zeros(2, 3, device=cuda).cpu().numpy().sum() == 0
    np.testing.assert_array_equal(dlcore.full((2,), 3.5, device=cuda).cpu().numpy(), [3.5, 3.5])
    np.testing.assert_array_equal(dlcore.arange(5, device=cuda).cpu().numpy(), np.arange(5))
    x = dlcore.randn(4, 4, device=cuda)
    assert dlcore.zeros_like(x).device == x.device and dlcore.ones_like(x).cpu().numpy().sum() == 16
    dlcore.manual_seed(3)
    a = dlcore.randn(5, device=cuda).cpu().numpy()
    dlcore.manual_seed(3)
    np.testing.assert_array_equal(a, dlcore.randn(5).numpy())


def test_mixed_devices_raise_naming_the_op(cuda):
    a, b = dlcore.ones(3, device=cuda), dlcore.ones(3)
    with pytest.raises(RuntimeError, match="Add: expected all tensors on one device, got cpu and cuda:0"):
        a + b
    with pytest.raises(RuntimeError, match="one device"):
        F.linear(dlcore.ones(2, 3), dlcore.ones(4, 3, device=cuda))


def test_gradients_flow_across_devices(cuda, rng):
    host = rng.standard_normal((4, 3))
    x = dlcore.tensor(host, requires_grad=True)
    y = (x.to(cuda) * 2.0).sum()
    y.backward()
    assert x.grad.device == dlcore.device("cpu")
    np.testing.assert_array_equal(x.grad.numpy(), np.full((4, 3), 2.0))


def test_module_to_cuda_moves_parameters_in_place_and_state_dict_round_trips(cuda, tmp_path):
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    params = list(model.parameters())
    before = [p.detach().numpy().copy() for p in params]
    model.to(cuda)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.device == dlcore.device(cuda) for p in params)
    out = model(dlcore.randn(3, 5, device=cuda))
    assert out.device == dlcore.device(cuda)
    path = tmp_path / "m.safetensors"
    dlcore.save(model.state_dict(), str(path))
    fresh = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2)).to(cuda)
    fresh.load_state_dict(dlcore.load(str(path)))
    for p, want in zip(fresh.parameters(), before):
        np.testing.assert_array_equal(p.detach().cpu().numpy(), want)
    model.cpu()
    assert all(p.device == dlcore.device("cpu") for p in params)


def test_memory_stats_follow_allocations(cuda):
    gc.collect()  # earlier tests' cyclic garbage must not be freed mid-test
    dlcore.cuda.synchronize()
    base = dlcore.cuda.memory_allocated()
    t = dlcore.empty(1 << 20, device=cuda)  # 4 MiB
    assert dlcore.cuda.memory_allocated() >= base + (4 << 20)
    assert dlcore.cuda.max_memory_allocated() >= dlcore.cuda.memory_allocated()
    reserved = dlcore.cuda.memory_reserved()
    del t
    assert dlcore.cuda.memory_allocated() == base
    assert dlcore.cuda.memory_reserved() == reserved  # cached, not freed
    again = dlcore.empty(1 << 20, device=cuda)  # served from the cache
    assert dlcore.cuda.memory_reserved() == reserved
    del again
    dlcore.cuda.empty_cache()
    assert dlcore.cuda.memory_reserved() < reserved


def test_out_of_memory_raises_and_the_process_survives(cuda):
    keep = dlcore.ones(1000, device=cuda)
    with pytest.raises(dlcore.cuda.OutOfMemoryError, match="tried to allocate .* bytes free of"):
        dlcore.empty(1 << 45, device=cuda)  # 128 TiB of float32
    assert isinstance(dlcore.cuda.OutOfMemoryError("x"), RuntimeError)
    assert keep.sum().item() == 1000.0
    assert (dlcore.ones(10, device=cuda) * 2.0).sum().item() == 20.0


def test_training_step_is_bitwise_reproducible(cuda):
    def run():
        dlcore.manual_seed(0)
        dlcore.cuda.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
                              nn.Linear(4 * 4 * 4, 10)).to(cuda)
        opt = dlcore.optim.Adam(model.parameters(), lr=1e-2)
        x, y = dlcore.randn(16, 1, 10, 10, device=cuda), dlcore.randint(0, 10, (16,), device=cuda)
        losses = []
        for _ in range(3):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, [p.detach().cpu().numpy() for p in model.parameters()]

    (l1, p1), (l2, p2) = run(), run()
    assert l1 == l2
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_on_cuda_match_the_cpu(cuda, rng, batch_first):
    from dlcore.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    host = rng.standard_normal((3, 5, 2) if batch_first else (5, 3, 2))
    lengths = [2, 5, 3]
    results = []
    for device in ("cpu", cuda):
        x = dlcore.tensor(host, dtype=np.float64, device=device, requires_grad=True)
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        out, out_lengths = pad_packed_sequence(packed, batch_first=batch_first, padding_value=-1.5)
        (out * out).sum().backward()
        results.append((packed.data.detach().cpu().numpy(), out.detach().cpu().numpy(), x.grad.cpu().numpy(),
                        out_lengths.numpy()))
    for cpu_part, gpu_part in zip(*results):
        np.testing.assert_array_equal(gpu_part, cpu_part)


def test_events_time_work_on_the_stream(cuda):
    a = dlcore.randn(512, 512, device=cuda)
    start, end = dlcore.cuda.Event(), dlcore.cuda.Event()
    start.record()
    for _ in range(3):
        a = a @ a * 1e-3
    end.record()
    ms = start.elapsed_time(end)
    assert 0.0 < ms < 10_000.0


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.0, float("inf"), -float("inf")])
def test_gradient_clipping_on_cuda_matches_the_cpu(cuda, rng, norm_type):
    grads = [rng.standard_normal((4, 5)), rng.standard_normal(7), np.zeros(3)]
    results = []
    for device in ("cpu", cuda):
        params = [dlcore.zeros(*g.shape, dtype=np.float64, device=device, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = dlcore.tensor(g, device=device)
        total = nn.utils.clip_grad_norm_(params, 0.5, norm_type=norm_type)
        nn.utils.clip_grad_value_(params[:1], 0.1)
        results.append([total.item()] + [p.grad.cpu().numpy() for p in params])
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    for got, want in zip(results[1][1:], results[0][1:]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
