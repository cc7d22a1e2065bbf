"""Accumulator arithmetic: product ops with every product and partial sum rounded in a format.

`kernel` holds the one batched dot-product kernel (and its exact fast path); `ops` the product
ops built on it (linear, convolutions, transposed convolutions, matmul, embedding bags).
"""

from .kernel import dot, sequential
from .ops import add_bias, conv, conv1d, conv2d, conv3d, conv_transpose, embedding_bag, linear, matmul, pad, trace_accumulation

__all__ = ["add_bias", "conv", "conv1d", "conv2d", "conv3d", "conv_transpose", "dot", "embedding_bag", "linear", "matmul",
           "pad", "sequential", "trace_accumulation"]
