"""Builds quantscope's optional native CPU kernels (src/quantscope/_native.c) at install time.

The extension is optional: where no C compiler is available the install still succeeds and
quantscope runs its bit-identical PyTorch kernels (`quantscope.native.status()` says which).
Everything else about the package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "quantscope._native",
            ["src/quantscope/_native.c"],
            # -ffp-contract=off: a fused multiply-add would skip a rounding the emulation needs;
            # -fno-math-errno and -fno-trapping-math let rint/floor/trunc and selects on comparisons
            # vectorize (no floating-point traps are enabled, so no value changes)
            extra_compile_args=["-O3", "-std=c11", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"],
            optional=True,
        )
    ]
)
