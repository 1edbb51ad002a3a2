"""autodag-nn: neural-network ops for autodag, found through the ``autodag`` entry point.

Installing the distribution is all it takes; ``autodag.ops.relu(x)`` and
``autodag.ops.softmax_cross_entropy(logits, labels)`` then work. ``softmax``,
``log_softmax`` and ``logsumexp`` take axes as scipy.special does (None, an int or a
tuple of ints; softmax's default is the last axis), the cross-entropy one class axis.
gelu, silu, elu, leaky_relu, log_sigmoid, one_hot, layer_norm, conv1d/conv2d and
max/avg_pool1d/2d follow torch.nn.functional's names and defaults (convolutions without
bias). The ops are registered by :mod:`autodag_nn.plugin`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
