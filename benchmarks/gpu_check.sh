#!/usr/bin/env bash
# The GPU checks of the Triton kernels, prepared as one short device call (a session lent a GPU
# machine runs it from the repository root; about 2-4 minutes, most of it Triton compiling one
# kernel per grid kind and rounding mode):
#   1. tests/test_triton_kernels.py compiled on CUDA: every format, dtype and rounding mode of
#      `quantize` and of the rounded dot product bit for bit against the CPU's PyTorch kernels, and
#      the emulator's dispatch of CUDA tensors to them;
#   2. benchmarks/arith.py: Triton M MAC/s per case and on a 2048^3 linear layer, with agreement
#      counted against the CPU.
# The device image has Python 3.12 with PyTorch, Triton, pytest and PyYAML; quantscope runs from
# src/ without installing (its C extension is not built there, so the CPU side is PyTorch's).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
python3 -c "import torch, triton; print('torch', torch.__version__, '| triton', triton.__version__, '|', torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_triton_kernels.py
status=$?
python3 benchmarks/arith.py --gpu-only --repeats 3
exit $status
