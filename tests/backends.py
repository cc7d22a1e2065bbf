"""Run a test directory's tests once per kernel backend: the native C kernels and PyTorch's.

Both must give the same bits against the same references. Without the native extension the
native half skips with the reason, except where QUANTSCOPE_REQUIRE_NATIVE=1 (CI), where it fails.
"""

from __future__ import annotations

import os

import pytest

from quantscope import native


@pytest.fixture(params=["native", "torch"], autouse=True)
def backend(request):
    """The kernel backend this test runs on."""
    if request.param == "native" and not native.status().available:
        reason = native.status().reason
        if os.environ.get("QUANTSCOPE_REQUIRE_NATIVE") == "1":
            pytest.fail(f"native kernels required here but unavailable: {reason}")
        pytest.skip(f"native kernels unavailable: {reason}")
    with native.use(request.param):
        yield request.param
