"""The declared public surface: every module says what it exports, every exported name exists,
and no submodule is shadowed by a function or class of the same name in its package."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import quantscope

MODULES = sorted(m.name for m in pkgutil.walk_packages(quantscope.__path__, "quantscope.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", ["quantscope", *MODULES])
def test_every_module_declares_its_public_names_and_they_exist(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ repeats a name"
    assert not [n for n in module.__all__ if n.startswith("_") and not n.endswith("__")], f"{name}.__all__ exports an internal name"


@pytest.mark.parametrize("name", MODULES)
def test_no_submodule_is_shadowed_by_a_name_in_its_package(name):
    parent, _, leaf = name.rpartition(".")
    attr = getattr(importlib.import_module(parent), leaf)
    assert attr is importlib.import_module(name), f"{parent}.{leaf} is a {type(attr).__name__}, hiding the module {name}"
