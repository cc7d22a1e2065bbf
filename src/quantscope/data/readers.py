"""Readers for the canonical file formats; each returns uint8 arrays (N, C, H, W) and labels."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_path
from .files import DatasetFileError, cache_dir

__all__ = [
    "Arrays",
    "IMAGE_SUFFIXES",
    "read_idx",
    "read_text_entries",
    "text_windows",
    "read_cifar_python",
    "read_svhn_mat",
    "read_digits",
    "read_image_folder",
]

Arrays = tuple[np.ndarray, np.ndarray]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzip-compressed or not, as a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetFileError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetFileError(f"{path}: header promises {dims} = {int(np.prod(dims))} bytes, file holds {body.size}")
    return body.reshape(dims).copy()  # frombuffer is read-only


def read_text_entries(path: Path, separator: bytes = b"%") -> list[bytes]:
    """Entries of a fortune-style text archive (.tar.gz of text files): each file's entries are
    separated by a line holding only `separator`; files in name order, COPYRIGHT left out."""
    entries: list[bytes] = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile() and os.path.basename(m.name) != "COPYRIGHT"), key=lambda m: m.name)
            for member in members:
                f = tar.extractfile(member)
                if f is None:
                    raise DatasetFileError(f"{path}: member {member.name} cannot be read")
                entries += _split_entries(f.read(), separator)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DatasetFileError(f"{path}: not a readable .tar.gz text archive ({err})") from None
    return entries


def _split_entries(text: bytes, separator: bytes) -> list[bytes]:
    """The non-empty entries of one file: text between lines holding only the separator."""
    entries: list[bytes] = []
    chunk: list[bytes] = []
    for line in text.split(b"\n"):
        if line.strip() == separator:
            entries.append(b"\n".join(chunk).strip(b"\n"))
            chunk = []
        else:
            chunk.append(line)
    entries.append(b"\n".join(chunk).strip(b"\n"))
    return [e for e in entries if e.strip()]


def text_windows(entries: list[bytes], context: int) -> Arrays:
    """Entries joined by newlines into one byte stream, cut into non-overlapping windows:
    inputs (N, context) and next-byte targets (N, context)."""
    stream = np.frombuffer(b"".join(e + b"\n" for e in entries), dtype=np.uint8)
    n = (len(stream) - 1) // context
    x = stream[: n * context].reshape(n, context)
    y = stream[1 : n * context + 1].reshape(n, context).astype(np.int64)
    return x.copy(), y


def read_cifar_python(path: Path) -> tuple[Arrays, Arrays]:
    """CIFAR-10's canonical python batches from cifar-10-python.tar.gz: (train, test)."""
    parts: dict[str, Arrays] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            base = os.path.basename(member.name)
            if base.startswith("data_batch_") or base == "test_batch":
                f = tar.extractfile(member)
                assert f is not None
                entry = pickle.load(f, encoding="bytes")  # the canonical format is a pickle
                x = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                parts[base] = (x, np.asarray(entry[b"labels"], dtype=np.int64))
    names = [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in names + ["test_batch"] if n not in parts]
    if missing:
        raise DatasetFileError(f"{path}: missing {', '.join(missing)}")
    train = (np.concatenate([parts[n][0] for n in names]), np.concatenate([parts[n][1] for n in names]))
    return train, parts["test_batch"]


def read_svhn_mat(path: Path) -> Arrays:
    """SVHN's cropped-digit .mat file: X (32, 32, 3, N) uint8 and y in 1..10 (10 means 0)."""
    from scipy.io import loadmat

    mat = loadmat(path)
    if "X" not in mat or "y" not in mat:
        raise DatasetFileError(f"{path}: expected variables X and y, found {sorted(k for k in mat if not k.startswith('__'))}")
    x = np.ascontiguousarray(np.asarray(mat["X"], dtype=np.uint8).transpose(3, 2, 0, 1))
    y = np.asarray(mat["y"], dtype=np.int64).reshape(-1) % 10
    return x, y


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: values 0..16 as uint8, shape (1797, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.uint8).reshape(-1, 1, 8, 8), bunch.target.astype(np.int64)


# ---------------------------------------------------------------------------------- image folder
def _folder_key(path: Path) -> str:
    """Content key for caching decoded image folders: archive bytes or folder listing."""
    h = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _walk_entries(path: Path):
    """(relative posix path, bytes opener) for every image file in a folder or archive; a link
    or special file with an image name is an error naming it (never skipped silently)."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.suffix.lower() not in IMAGE_SUFFIXES or p.is_dir():
                continue
            if p.is_symlink() or not p.is_file():
                raise DatasetFileError(f"{path}: {p.relative_to(path).as_posix()} is a link or special file, not an image file")
            yield p.relative_to(path).as_posix(), p.read_bytes
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    yield name, (lambda n=name: z.read(n))
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for m in tar:  # streaming: members in archive order
                if Path(m.name).suffix.lower() not in IMAGE_SUFFIXES or m.isdir():
                    continue
                f = tar.extractfile(m) if m.isfile() else None
                if f is None:
                    raise DatasetFileError(f"{path}: member {m.name} is a link or special file, not an image file")
                data = f.read()
                yield m.name, (lambda d=data: d)
    else:
        raise DatasetFileError(f"{path}: not a folder, .zip or .tar(.gz) archive")


def _decode(path: Path, rel: str, read: Any) -> np.ndarray:
    """One image as uint8 (C, H, W); an unreadable one is an error naming the member."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(read())) as img:
            arr = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zipfile.BadZipFile) as err:
        raise DatasetFileError(f"{path}: image {rel} cannot be decoded ({type(err).__name__}: {err})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _decode_image_folder(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    splits: dict[str, dict[str, list[tuple[str, np.ndarray]]]] = {}
    try:
        for rel, read in _walk_entries(path):
            parts = [p for p in rel.split("/") if p]
            if len(parts) < 3:
                continue  # not <split>/<class>/<file>
            splits.setdefault(parts[-3], {}).setdefault(parts[-2], []).append((parts[-1], _decode(path, rel, read)))
    except (tarfile.TarError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DatasetFileError(f"{path}: truncated or corrupted archive ({type(err).__name__}: {err})") from None
    if not splits:
        raise DatasetFileError(f"{path}: no images found in <split>/<class>/<image> layout")
    classes = sorted({c for per_split in splits.values() for c in per_split})
    out = {}
    for split, per_class in splits.items():
        xs, ys = [], []
        for label, cls in enumerate(classes):
            for _, arr in sorted(per_class.get(cls, []), key=lambda t: t[0]):
                xs.append(arr)
                ys.append(label)
        shapes = {a.shape for a in xs}
        if len(shapes) != 1:
            raise DatasetFileError(f"{path}: images in split {split!r} differ in size: {sorted(shapes)[:4]}")
        out[split] = (np.stack(xs), np.asarray(ys, dtype=np.int64), classes)
    return out


def _read_decoded(cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]] | None:
    """A decoded-image cache's splits, or None (with a warning naming it) when it is unreadable."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            classes = [str(c) for c in z["classes"]]
            return {s: (z[f"{s}_x"], z[f"{s}_y"], classes) for s in [str(s) for s in z["splits"]]}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(f"decoded-image cache {cache} is unreadable ({err}); decoding the images again", stacklevel=3)
        return None


def read_image_folder(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """An image folder (<split>/<class>/<image>) as a directory, .zip or .tar(.gz) archive.

    Decoded once and cached (npz under the user cache, written atomically); classes are sorted
    folder names; images within a class are in file-name order.
    """
    if not path.exists():
        raise DatasetFileError(f"image folder {path} does not exist")
    cache = cache_dir() / "decoded" / f"{path.name}-{_folder_key(path)}.npz"
    if cache.is_file():
        cached = _read_decoded(cache)
        if cached is not None:
            return cached
    decoded = _decode_image_folder(path)
    arrays: dict[str, Any] = {f"{s}_{k}": v for s, (x, y, _) in decoded.items() for k, v in (("x", x), ("y", y))}
    classes = next(iter(decoded.values()))[2]
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez(f, splits=np.array(sorted(decoded)), classes=np.array(classes), **arrays)
    return decoded
