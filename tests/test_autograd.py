"""The tape: topological backward, accumulation, retain_graph, no_grad, custom Functions,
and the Tensor basics autograd relies on."""
import numpy as np
import pytest

import dlcore
from dlcore.gradcheck import gradcheck


def test_gradient_accumulates_across_uses_and_calls():
    x = dlcore.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x + x * 3.0).sum()  # dy/dx = 2x + 3
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])
    (x * 2.0).sum().backward()  # accumulates into .grad like PyTorch
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 9.0, 11.0])


def test_diamond_graph_is_visited_once_in_topological_order():
    x = dlcore.tensor([0.5, -1.5], dtype=dlcore.float64, requires_grad=True)
    a = x.tanh()
    b = a * a
    c = a * 2.0
    (b + c).sum().backward()
    t = np.tanh([0.5, -1.5])
    np.testing.assert_allclose(x.grad.numpy(), (2 * t + 2) * (1 - t * t))


def test_second_backward_needs_retain_graph():
    x = dlcore.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_no_grad_records_nothing_and_detach_cuts_the_graph():
    x = dlcore.ones(3, requires_grad=True)
    with dlcore.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.grad_fn is None
    z = (x * 3.0).detach()
    assert not z.requires_grad
    w = (x * z).sum()
    w.backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_gradients_only_where_needed():
    a = dlcore.randn(4, 3, requires_grad=True)
    b = dlcore.randn(3, 2)  # constant
    (a @ b).sum().backward()
    assert a.grad is not None and b.grad is None


def test_backward_of_non_scalar_needs_a_gradient():
    x = dlcore.randn(3, requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(dlcore.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_retain_grad_on_a_non_leaf():
    x = dlcore.tensor([1.0, -2.0], requires_grad=True)
    h = (x * 3.0).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.detach().numpy())


def test_leaf_gradients_never_alias_each_other():
    a = dlcore.ones(3, requires_grad=True)
    b = dlcore.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.numpy()[0] = 100.0
    assert b.grad.numpy()[0] == 1.0


def test_multi_output_function_with_one_output_used():
    x = dlcore.randn(4, 6, dtype=dlcore.float64, requires_grad=True)
    left, right = dlcore.split(x, 3, dim=1)
    (right * 2.0).sum().backward()
    want = np.zeros((4, 6))
    want[:, 3:] = 2.0
    np.testing.assert_allclose(x.grad.numpy(), want)


class Cube(dlcore.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x * x * 3.0


def test_custom_function_is_differentiable():
    x = dlcore.randn(5, dtype=dlcore.float64, requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn is not None
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() ** 3)
    gradcheck(Cube.apply, [x])


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(dlcore.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, grad):
            return grad * 3.0

    with pytest.raises(AssertionError, match="analytic"):
        gradcheck(Wrong.apply, [dlcore.randn(3, dtype=dlcore.float64, requires_grad=True)])


def test_numpy_is_zero_copy_and_from_numpy_shares_memory():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = dlcore.from_numpy(a)
    a[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    assert np.shares_memory(t.numpy(), a)
    copied = dlcore.tensor(a)
    a[0, 1] = -1.0
    assert copied[0, 1].item() == 1.0


def test_dtype_inference_and_item():
    assert dlcore.tensor([1, 2]).dtype == dlcore.int64
    assert dlcore.tensor([1.0, 2]).dtype == dlcore.float32
    assert dlcore.tensor(np.zeros(2)).dtype == dlcore.float64
    assert dlcore.tensor([True]).dtype == dlcore.bool_
    assert dlcore.tensor(3.5).item() == 3.5
    with pytest.raises(ValueError, match="one-element"):
        dlcore.ones(2).item()


def test_manual_seed_makes_random_tensors_reproducible():
    dlcore.manual_seed(7)
    a = dlcore.randn(4, 4).numpy().copy()
    b = dlcore.rand(3).numpy().copy()
    dlcore.manual_seed(7)
    np.testing.assert_array_equal(dlcore.randn(4, 4).numpy(), a)
    np.testing.assert_array_equal(dlcore.rand(3).numpy(), b)
    assert dlcore.randn(1000).numpy().std() == pytest.approx(1.0, abs=0.1)


def test_creation_functions():
    assert dlcore.zeros(2, 3).shape == (2, 3)
    assert dlcore.ones((4,)).numpy().sum() == 4
    assert dlcore.full((2, 2), 7.0).numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert dlcore.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert dlcore.arange(0, 1, 0.25).dtype == dlcore.float32
    assert dlcore.empty(3, 2).shape == (3, 2)
    with pytest.raises(ValueError, match="negative dimension"):
        dlcore.zeros(2, -1)


def test_int_and_bool_tensors_for_accuracy_counting():
    logits = dlcore.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    labels = dlcore.tensor([1, 0, 0])
    correct = (logits.argmax(1) == labels).sum()
    assert correct.item() == 2
    assert (logits.argmax(1) == labels).float().mean().item() == pytest.approx(2 / 3)


def test_dropout_masks_scale_and_gradient():
    dlcore.manual_seed(0)
    x = dlcore.ones(200, 100, requires_grad=True)
    y = dlcore.dropout(x, 0.3, training=True)
    kept = y.detach().numpy() != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-6)
    assert dlcore.dropout(x, 0.3, training=False) is x


def test_dropout_is_reproducible_with_manual_seed():
    x = dlcore.ones(1000)
    dlcore.manual_seed(3)
    a = dlcore.dropout(x, 0.5).numpy().copy()
    dlcore.manual_seed(3)
    np.testing.assert_array_equal(dlcore.dropout(x, 0.5).numpy(), a)


def test_threads_can_be_set():
    n = dlcore.get_num_threads()
    dlcore.set_num_threads(1)
    assert dlcore.get_num_threads() == 1
    dlcore.set_num_threads(n)
    with pytest.raises(ValueError):
        dlcore.set_num_threads(0)


def test_dropout_and_cast_pass_the_gradient_check():
    x = dlcore.randn(6, 5, dtype=dlcore.float64, requires_grad=True)

    def dropped(t):
        dlcore.manual_seed(11)  # the same mask on every evaluation
        return dlcore.dropout(t, 0.4, training=True)

    gradcheck(dropped, [x])
    # Through float32 the function is linear, so a large step is exact despite the rounding.
    gradcheck(lambda t: (t.float() * 2.0).double(), [x], eps=1e-2, atol=1e-5, rtol=1e-3)
