"""The shape of the source, measured on its syntax tree: short functions, shallow nesting, and no
`isinstance` ladders on format classes outside formats.py (format facts live on the formats)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "quantscope"
FORMAT_CLASSES = {"Format", "FixedPoint", "MiniFloat", "PowerOfTwo", "Binary", "Float32", "ScaledFormat"}
_BLOCKS = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith, ast.Match)


def _depth(node: ast.AST, level: int = 0) -> int:
    """Deepest nesting of compound statements under node; an `elif` stays at its `if`'s level."""
    deepest = level
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue  # nested functions are measured on their own
        elif_chain = isinstance(node, ast.If) and child in node.orelse and len(node.orelse) == 1 and isinstance(child, ast.If)
        deeper = isinstance(child, _BLOCKS) and not elif_chain
        deepest = max(deepest, _depth(child, level + 1 if deeper else level))
    return deepest


def _functions():
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{path.relative_to(SRC)}:{node.lineno} {node.name}", node


def test_every_function_is_under_50_lines():
    long = [(n.end_lineno - n.lineno + 1, where) for where, n in _functions() if n.end_lineno - n.lineno + 1 >= 50]
    assert not long, sorted(long, reverse=True)


def test_no_function_nests_deeper_than_four_levels():
    deep = [(_depth(n), where) for where, n in _functions() if _depth(n) > 4]
    assert not deep, sorted(deep, reverse=True)


def test_format_classes_are_not_dispatched_on_outside_formats_and_the_kernels():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name in ("formats.py", "quantization.py"):  # the formats, and the kernels dispatched on them
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if names & FORMAT_CLASSES:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not found, found


def test_every_public_name_has_a_docstring():
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        if path.name != "__main__.py" and not ast.get_docstring(tree):
            missing.append(f"{path.relative_to(SRC)} (module)")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_") and not ast.get_docstring(node):
                missing.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert not missing, missing
