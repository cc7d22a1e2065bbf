"""Precision plans: which format each op's weights, bias, operands, accumulator and output use.

A plan is a default `LayerPrecision` plus ordered overrides keyed by op name or glob pattern
(`fnmatch` syntax: `features.*`, `blocks.*.attn.scores`, `fc?`; op names are listed by
`quantscope.layers`). An override may set only some fields; the rest come from the default and
earlier overrides, and later overrides win. Plans are values: equal when their contents are,
hashable, and saved to / loaded from YAML or JSON.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .arith.blocks import block_pair_error
from .errors import did_you_mean
from .files import read_yaml, write_atomic
from .formats import Float32, Format, as_format

__all__ = ["LayerPrecision", "PrecisionPlan", "FIELDS", "ACTIVATION_FIELDS"]

FIELDS = ("weights", "bias", "data", "accumulator", "rhs", "output", "elementwise")
#: fields whose formats describe activations (adaptive ones need a calibration batch)
ACTIVATION_FIELDS = ("data", "rhs", "output", "elementwise")


def _opt_format(value: Format | str | None, what: str) -> Format | None:
    if value is None:
        return None
    try:
        return as_format(value)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


@dataclass(frozen=True)
class LayerPrecision:
    """Formats for one op (see docs/emulation.md for every op kind's roles).

    Product ops (linear, convolutions, matmul, attention, recurrent products, embeddings):
    `weights` and `bias` quantize the stored parameters (`bias=None`: the weights' format, float32
    for a scaled weight format such as mxfp4);
    `data` quantizes every activation flowing into the op (both operands of a weight-free product
    such as attention's Q.K^T, unless `rhs` gives the second operand its own format);
    `accumulator`, when set, rounds every product and every partial sum in that format (None:
    exact float32 arithmetic); `output`, when set, quantizes the op's result. Element-wise ops
    (activations, normalizations, residual adds, softmax, pooling) quantize their result in
    `elementwise` when it is set.
    """

    weights: Format = field(default_factory=Float32)
    bias: Format | None = None
    data: Format = field(default_factory=Float32)
    accumulator: Format | None = None
    rhs: Format | None = None
    output: Format | None = None
    elementwise: Format | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _opt_format(self.weights, "weights") or Float32())
        object.__setattr__(self, "data", _opt_format(self.data, "data") or Float32())
        for name in ("bias", "rhs", "accumulator", "output", "elementwise"):
            object.__setattr__(self, name, _opt_format(getattr(self, name), name))
        for name in ("output", "elementwise"):
            fmt = getattr(self, name)
            if fmt is not None and fmt.scale_sharing != "none":
                raise ValueError(f"{name}: {fmt} shares a scale along the consuming op's reduction axis, which an op's "
                                 "result does not know; give it to the consuming op's data instead")
        if self.accumulator is not None and self.accumulator.accumulator_error is not None:
            raise ValueError(f"accumulator {self.accumulator}: {self.accumulator.accumulator_error}")
        if self.accumulator is not None:
            for a, b in ((self.data, self.weights), (self.data, self.rhs_format)):
                error = block_pair_error(a, b)
                if error is not None:
                    raise ValueError(f"accumulator {self.accumulator} with {a} x {b}: {error}")

    @property
    def bias_format(self) -> Format:
        """The bias format in effect: `bias`, else the weights' format, except that a scaled weight
        format's bias stays float32 (block-scaled hardware adds the bias in its accumulator)."""
        if self.bias is not None:
            return self.bias
        return Float32() if self.weights.scale_sharing != "none" else self.weights

    @property
    def rhs_format(self) -> Format:
        """The second operand's format of a weight-free product (the data format when unset)."""
        return self.rhs if self.rhs is not None else self.data

    @property
    def is_float32(self) -> bool:
        """True when the op runs exactly as the float model."""
        return (
            all(f.is_identity for f in (self.weights, self.bias_format, self.data, self.rhs_format))
            and self.accumulator is None
            and all(f is None or f.is_identity for f in (self.output, self.elementwise))
        )

    def to_dict(self) -> dict[str, str | None]:
        """Field -> format string (None for unset bias/accumulator)."""
        return {name: None if getattr(self, name) is None else str(getattr(self, name)) for name in FIELDS}

    def __str__(self) -> str:
        parts = [f"weights={self.weights}", f"data={self.data}"]
        if self.bias is not None:
            parts.insert(1, f"bias={self.bias}")
        parts += [f"{name}={getattr(self, name)}" for name in ("rhs", "accumulator", "output", "elementwise")
                  if getattr(self, name) is not None]
        return ", ".join(parts)


def _weights_and_data(text: str) -> dict[str, str]:
    """A plan string, "W, D" or one format for both, as {weights, data}."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    if len(parts) > 2:
        raise ValueError(f"a plan string is one format or 'weights, data'; got {len(parts)} parts in {text!r}")
    return {"weights": parts[0].strip(), "data": parts[-1].strip()}


def _partial(values: Mapping[str, Any] | str, where: str) -> tuple[tuple[str, Any], ...]:
    """Validated (field, format) pairs of a partial override: a mapping of fields, or a plan
    string ("W, D" or one format for weights and data)."""
    if isinstance(values, str):
        values = _weights_and_data(values)
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a plan string or a mapping of fields, got {type(values).__name__}")
    out = []
    for key, value in values.items():
        if key not in FIELDS:
            raise ValueError(f"{where}: unknown field {key!r}{did_you_mean(key, FIELDS)}; fields are {', '.join(FIELDS)}")
        fmt = _opt_format(value, f"{where}.{key}")
        if fmt is None and key in ("weights", "data"):
            raise ValueError(f"{where}.{key}: must be a format, got None")
        out.append((key, fmt))
    return tuple(out)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _override_data(overrides: Sequence[tuple[str, tuple[tuple[str, Format | None], ...]]]) -> dict[str, Any] | list[list[Any]]:
    """Overrides as plain data that means the same op for op: an op name repeated with only other
    names in between is merged into its first entry (distinct names never match the same op);
    the result is a mapping unless sorting its keys would move a glob past a pattern it could
    overlap, else an ordered list of [pattern, formats] pairs."""
    merged: list[tuple[str, dict[str, str | None]]] = []
    for pattern, values in overrides:
        formats = {k: None if f is None else str(f) for k, f in values}
        at = next((i for i, (p, _) in enumerate(merged) if p == pattern), None)
        if at is not None and not _is_glob(pattern) and not any(_is_glob(p) for p, _ in merged[at:]):
            merged[at] = (pattern, {**merged[at][1], **formats})
        else:
            merged.append((pattern, formats))
    patterns = [p for p, _ in merged]
    reordered = any(b < a and (_is_glob(a) or _is_glob(b)) for i, a in enumerate(patterns) for b in patterns[i + 1:])
    if len(set(patterns)) < len(patterns) or reordered:
        return [[p, f] for p, f in merged]
    return dict(merged)


@dataclass(frozen=True)
class PrecisionPlan:
    """A default layer precision plus per-layer overrides by module name or glob pattern."""

    default: LayerPrecision = field(default_factory=LayerPrecision)
    overrides: tuple[tuple[str, tuple[tuple[str, Format | None], ...]], ...] = ()

    def __init__(
        self,
        default: LayerPrecision | Mapping[str, Any] | None = None,
        overrides: Mapping[str, Mapping[str, Any] | LayerPrecision]
        | Iterable[tuple[str, Any]]
        | None = None,
    ) -> None:
        if default is None:
            default = LayerPrecision()
        elif not isinstance(default, LayerPrecision):
            default = LayerPrecision(**dict(_partial(default, "default")))
        items = overrides.items() if isinstance(overrides, Mapping) else (overrides or ())
        normalized = []
        for pattern, values in items:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"override keys must be layer names or glob patterns, got {pattern!r}")
            if isinstance(values, LayerPrecision):
                values = {k: getattr(values, k) for k in FIELDS}
            elif isinstance(values, tuple):
                values = dict(values)
            normalized.append((pattern, _partial(values, f"overrides[{pattern!r}]")))
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "overrides", tuple(normalized))

    @classmethod
    def uniform(
        cls,
        weights: Format | str = "float32",
        data: Format | str = "float32",
        bias: Format | str | None = None,
        accumulator: Format | str | None = None,
        *,
        rhs: Format | str | None = None,
        output: Format | str | None = None,
        elementwise: Format | str | None = None,
    ) -> PrecisionPlan:
        """The same precision for every op."""
        given: dict[str, Any] = dict(weights=weights, bias=bias, data=data, rhs=rhs, accumulator=accumulator,
                                     output=output, elementwise=elementwise)
        return cls(LayerPrecision(**given))

    def with_layer(self, pattern: str, **formats: Format | str | None) -> PrecisionPlan:
        """A new plan with one more override appended (it wins over earlier ones)."""
        return PrecisionPlan(self.default, list(self.overrides) + [(pattern, formats)])

    def for_layer(self, name: str) -> LayerPrecision:
        """The precision of the op called `name`: default, then matching overrides in order."""
        result = self.default
        for pattern, values in self.overrides:
            if fnmatch.fnmatchcase(name, pattern):
                result = replace(result, **dict[str, Any](values))
        return result

    def _precisions(self) -> Iterator[tuple[str, Format | None]]:
        """Every (field, format) the plan sets, default and overrides."""
        yield from ((f, getattr(self.default, f)) for f in FIELDS)
        for _, values in self.overrides:
            yield from values

    @property
    def adaptive_activations(self) -> list[str]:
        """Adaptive formats the plan gives to activations (they need a calibration batch)."""
        return sorted({str(f) for name, f in self._precisions() if name in ACTIVATION_FIELDS and f is not None and f.adaptive})

    @property
    def uses_elementwise(self) -> bool:
        """True when some op's element-wise output is quantized."""
        return any(name == "elementwise" and f is not None and not f.is_identity for name, f in self._precisions())

    @property
    def is_float32(self) -> bool:
        """True when every op, whatever its name, runs exactly as the float model."""
        return self.default.is_float32 and all(self.for_layer(p).is_float32 for p, _ in self.overrides) and not self.uses_elementwise

    def validate(self, product_ops: Iterable[str], elementwise_ops: Iterable[str] = ()) -> None:
        """Raise if an override names no op; the error lists the known ops."""
        names, others = list(product_ops), list(elementwise_ops)
        for pattern, _ in self.overrides:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names + others):
                raise ValueError(
                    f"plan override {pattern!r} matches no op{did_you_mean(pattern, names + others)}; "
                    f"product ops: {', '.join(names) or '(none)'}"
                    + (f"; element-wise ops: {', '.join(others)}" if others else "")
                )

    # ------------------------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """Plain data: {'default': {...}, 'overrides': {pattern: {...}}} with format strings; the
        overrides are a list of [pattern, {...}] pairs where a mapping (whose keys JSON may sort)
        could change which override wins (`_override_data`)."""
        return {"default": {k: v for k, v in self.default.to_dict().items() if v is not None}, "overrides": _override_data(self.overrides)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrecisionPlan:
        """Inverse of `to_dict` (also accepts a bare layer-precision mapping as the default)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a plan must be a mapping with 'default' and 'overrides', got {type(data).__name__}")
        unknown = set(data) - {"default", "overrides"}
        if unknown and not unknown <= set(FIELDS):
            raise ValueError(f"plan: unknown key(s) {sorted(unknown)}; expected 'default' and 'overrides'")
        if unknown:  # a bare {weights: ..., data: ...}
            return cls(dict(data))
        overrides = data.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            if not isinstance(overrides, list) or not all(isinstance(o, (list, tuple)) and len(o) == 2 for o in overrides):
                raise ValueError("plan: 'overrides' must map layer names or patterns to formats, or list [pattern, formats] pairs in order")
            overrides = [tuple(o) for o in overrides]
        return cls(data.get("default") or {}, overrides)

    @classmethod
    def from_spec(cls, spec: str | Mapping[str, Any]) -> PrecisionPlan:
        """A plan from a plan string ("weights, data" or one format for both), a mapping of one
        op precision's fields ({weights, data, bias, ...}), or a full plan {default, overrides}."""
        if isinstance(spec, str):
            return cls.parse(spec)
        if not isinstance(spec, Mapping):
            raise ValueError(f"a plan is a string or a mapping, got {type(spec).__name__}")
        if set(spec) <= set(FIELDS):
            return cls(dict(spec))
        return cls.from_dict(spec)

    @classmethod
    def from_argument(cls, text: str | None) -> PrecisionPlan:
        """The plan a command-line argument names: a .yaml/.yml/.json file, a plan string, or
        None (every op float32)."""
        if not text:
            return cls()
        if Path(text).suffix.lower() in (".yaml", ".yml", ".json"):
            return cls.load(text)
        return cls.parse(text)

    @classmethod
    def parse(cls, text: str) -> PrecisionPlan:
        """A uniform plan from "W, D" (weights and data formats) or one format for both."""
        return cls.uniform(**_weights_and_data(text))

    def save(self, path: str | Path) -> None:
        """Write the plan as YAML (.yaml/.yml) or JSON (.json), atomically."""
        path = Path(path)
        write_atomic(path, self._dump(path.suffix.lower()))

    def _dump(self, suffix: str) -> str:
        if suffix == ".json":
            return json.dumps(self.to_dict(), indent=2) + "\n"
        if suffix in (".yaml", ".yml"):
            return yaml.safe_dump(self.to_dict(), sort_keys=False)
        raise ValueError(f"plan files end in .yaml, .yml or .json, got {suffix!r}")

    @classmethod
    def load(cls, path: str | Path) -> PrecisionPlan:
        """Read a plan written by `save` (or by hand)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"plan file {str(path)!r} does not exist")
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"{path} is not valid JSON: {err}") from None
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = read_yaml(path)
        else:
            raise ValueError(f"plan files end in .yaml, .yml or .json, got {path.suffix!r}")
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def __str__(self) -> str:
        lines = [f"default: {self.default}"]
        for pattern, vals in self.overrides:
            lines.append(f"{pattern}: " + ", ".join(f"{k}={v}" for k, v in vals))
        return "\n".join(lines)

