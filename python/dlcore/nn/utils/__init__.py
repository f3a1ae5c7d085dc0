"""Helpers as in torch.nn.utils: gradient clipping (``clip_grad``) and packed/padded
variable-length sequences (``rnn``)."""
from dlcore.nn.utils import rnn
from dlcore.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm", "rnn"]
