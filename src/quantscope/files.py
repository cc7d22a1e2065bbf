"""Atomic file writes: readers never see half a file, and a failed write leaves no temp file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

__all__ = ["atomic_path", "write_atomic", "read_yaml"]

#: limits on YAML files read as configs or plans: size, and alias uses (a few aliases can
#: expand to gigabytes: the "billion laughs")
MAX_YAML_BYTES = 1 << 20
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block succeeds,
    removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write text or bytes to `path` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


class _LimitedLoader(yaml.SafeLoader):
    """A safe loader that refuses documents using more than MAX_YAML_ALIASES aliases."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} YAML aliases (*name); write the values out")
        return super().compose_node(parent, index)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, read safely: at most 1 MiB and 100 aliases; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ValueError(f"{path} has {size:,} bytes; YAML configs and plans are limited to {MAX_YAML_BYTES:,}")
    try:
        content = yaml.load(path.read_text(), Loader=_LimitedLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if _expanded_size(content, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ValueError(f"{path} expands to more than {MAX_YAML_NODES:,} values through its aliases (*name); write the values out")
    return content


def _expanded_size(content: Any, limit: int) -> int:
    """Values in `content` counting every alias as the copy it stands for; stops past `limit`
    (a few aliases nest into billions of values, which any later error message would print)."""
    count, stack = 0, [content]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return count
