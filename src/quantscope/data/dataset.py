"""Datasets held as uint8 tensors, normalized on the fly, with train/test/val splits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import did_you_mean
from .catalog import SPECS, DatasetSpec
from .files import locate
from .readers import read_cifar_python, read_digits, read_idx, read_image_folder, read_svhn_mat, read_text_entries, text_windows

__all__ = ["NORMALIZATIONS", "SPLITS", "VAL_FRACTION", "Dataset", "names", "spec", "val_indices", "load", "fetch"]

SPLITS = ("train", "test", "val", "test_rest")
VAL_FRACTION = 0.1
#: input normalizations a dataset offers (see Dataset)
NORMALIZATIONS = ("standard", "unit", "caffe")


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (N, C, H, W), labels as int64; `batches` yields normalized float tensors.

    `normalize="standard"` subtracts the dataset's per-channel mean and divides by its std;
    `"unit"` only scales to [0, 1] (Caffe's LeNet and Sakr's MLP use that); `"caffe"` keeps pixel
    units (0-255) and subtracts the per-channel mean, as Caffe's CIFAR-10 models see their input
    (Caffe subtracts a per-pixel mean image; the per-channel mean gives the same range). A text dataset
    (`kind="text"`) holds byte tokens (N, T) and next-token labels (N, T); its inputs are int64.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    max_value: int = 255
    lossless: bool = True
    normalize: str = "standard"
    kind: str = "image"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example (C, H, W)."""
        return tuple(self.images.shape[1:])

    def class_counts(self) -> list[int]:
        """Number of examples (targets, for text) per class."""
        return torch.bincount(self.labels.reshape(-1), minlength=len(self.classes)).tolist()

    def with_normalize(self, normalize: str) -> Dataset:
        """The same data normalized differently (one of NORMALIZATIONS)."""
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
        return replace(self, normalize=normalize)

    def subset(self, index: torch.Tensor | slice) -> Dataset:
        """The examples at `index` (same normalization)."""
        return replace(self, images=self.images[index], labels=self.labels[index])

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> normalized float32 (text: byte tokens -> int64)."""
        if self.kind == "text":
            return images.long()
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        if self.normalize == "caffe":
            return images.to(torch.float32).sub_(mean * self.max_value)
        x = images.to(torch.float32).div_(self.max_value)
        if self.normalize == "unit":
            return x
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return x.sub_(mean).div_(std)

    def tensors(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `limit` examples (all by default) as (normalized images, labels)."""
        sl = slice(None, limit)
        return self.prepare(self.images[sl]), self.labels[sl]

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalized (x, y) batches; `augment` adds random 4-pixel-padded crops and flips."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            imgs = self.images[idx]
            if augment:
                if self.kind == "text":
                    raise ValueError(f"{self.name}: augmentation (crops and flips) applies to images, not text")
                imgs = _crop_flip(imgs, generator)
            yield self.prepare(imgs), self.labels[idx]


def _crop_flip(imgs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random crops of the 4-pixel zero-padded images and random horizontal flips."""
    n, _, h, w = imgs.shape
    padded = torch.nn.functional.pad(imgs, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).view(n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w)[None]).view(n, 1, 1, w)
    out = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(imgs.shape[1]).view(1, -1, 1, 1), rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def names() -> list[str]:
    """Registered dataset names (any image folder path is accepted too)."""
    return sorted(SPECS)


def spec(name: str) -> DatasetSpec:
    """A dataset's catalog entry; unknown names suggest the closest."""
    if name not in SPECS:
        raise ValueError(f"unknown dataset {name!r}{did_you_mean(name, SPECS)}; known: {', '.join(names())}, or a path to an image folder / archive")
    return SPECS[name]


def _raw(name: str, data_dir, download: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (x, y), 'test': (x, y)} as uint8 NCHW arrays and int64 labels."""
    s = spec(name)
    if name in ("mnist", "fashion-mnist"):
        f = {rf.name: locate(s, rf, data_dir, download) for rf in s.files}
        return {
            split: (read_idx(f[f"{prefix}-images-idx3-ubyte.gz"])[:, None], read_idx(f[f"{prefix}-labels-idx1-ubyte.gz"]).astype(np.int64))
            for split, prefix in (("train", "train"), ("test", "t10k"))
        }
    if name == "cifar10":
        train, test = read_cifar_python(locate(s, s.files[0], data_dir, download))
        return {"train": train, "test": test}
    if name == "cifar10-jpeg":
        folders = read_image_folder(locate(s, s.files[0], data_dir, download))
        return {k: (x, y) for k, (x, y, _) in folders.items()}
    if name == "svhn":
        return {split: read_svhn_mat(locate(s, rf, data_dir, download)) for split, rf in zip(("train", "test"), s.files)}
    if s.extra.get("kind") == "text":
        return _text_splits(read_text_entries(locate(s, s.files[0], data_dir, download)), int(s.extra["context"]))
    if name == "digits":
        x, y = read_digits()
        held_out = _per_class_sample(y, 0.2, seed=0)
        rest = np.setdiff1d(np.arange(len(y)), held_out)
        return {"train": (x[rest], y[rest]), "test": (x[held_out], y[held_out])}
    raise AssertionError(name)


def _text_splits(entries: list[bytes], context: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train/test/val/test_rest windows of a text corpus split by entry (see the catalog note)."""
    order = np.random.default_rng(seed).permutation(len(entries))
    n_test = int(round(0.1 * len(entries)))
    test = np.sort(order[:n_test])
    parts = {"train": np.sort(order[n_test:]), "test": test, "val": test[: len(test) // 2], "test_rest": test[len(test) // 2 :]}
    return {k: text_windows([entries[i] for i in idx], context) for k, idx in parts.items()}


def _per_class_sample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random `fraction` of each class (rounded to nearest)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picked.append(rng.choice(idx, size=int(round(fraction * len(idx))), replace=False))
    return np.sort(np.concatenate(picked))


def _select_split(x: np.ndarray, y: np.ndarray, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The examples of `split` from the base set: all of it, "val", or "test_rest"."""
    if split not in ("val", "test_rest"):
        return x, y
    val = val_indices(y, seed)
    keep = val if split == "val" else np.setdiff1d(np.arange(len(y)), val)
    return x[keep], y[keep]


def val_indices(test_labels: torch.Tensor | np.ndarray, seed: int = 0) -> np.ndarray:
    """Hashemi's validation set: 10% of each class drawn from the test set (sorted indices)."""
    return _per_class_sample(np.asarray(test_labels), VAL_FRACTION, seed)


def load(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    normalize: str = "standard",
) -> Dataset:
    """Load a dataset split: "train", "test", "val" (10% of each test class, seeded) or
    "test_rest" (the test set minus "val"). `name` is a registered dataset or a path to an image
    folder (<split>/<class>/<image>, as a folder, .zip or .tar.gz)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}{did_you_mean(split, SPLITS)}; splits: {', '.join(SPLITS)}")
    if name not in SPECS and (Path(name).exists() or "/" in name or name.endswith((".zip", ".tar.gz", ".tgz", ".tar"))):
        return _load_image_folder(Path(name), split, seed, normalize)
    s = spec(name)
    raw = _raw(name, data_dir, download)
    if split in raw:  # text corpora split by entry themselves
        x, y = raw[split]
    else:
        x, y = raw["train" if split == "train" else "test"]
        x, y = _select_split(x, y, split, seed)
    return Dataset(
        name=name, split=split, images=torch.from_numpy(np.ascontiguousarray(x)), labels=torch.from_numpy(np.asarray(y, dtype=np.int64)),
        classes=s.classes, mean=s.mean, std=s.std, max_value=16 if name == "digits" else 255, lossless=s.lossless,
        kind=s.extra.get("kind", "image"),
    ).with_normalize(normalize)


def _load_image_folder(path: Path, split: str, seed: int, normalize: str) -> Dataset:
    folders = read_image_folder(path)
    base = "train" if split == "train" else "test"
    if base not in folders:
        raise ValueError(f"image folder {path} has splits {', '.join(sorted(folders))}; {base!r} is needed for split {split!r}")
    x, y, classes = folders[base]
    x, y = _select_split(x, y, split, seed)
    tx = folders["train"][0] if "train" in folders else x
    scaled = tx.reshape(tx.shape[0], tx.shape[1], -1).astype(np.float64) / 255
    mean = tuple(float(v) for v in scaled.mean(axis=(0, 2)))
    std = tuple(float(v) for v in scaled.std(axis=(0, 2)))
    return Dataset(str(path), split, torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), tuple(classes), mean, std).with_normalize(normalize)


def fetch(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Download (if missing) and verify every file of a dataset; returns their paths."""
    s = spec(name)
    return [locate(s, rf, data_dir, download=True) for rf in s.files]
