"""Every test here runs on both kernel backends (tests/backends.py)."""

from backends import backend  # noqa: F401
