"""Dataset loaders on the real shared files, splits, integrity errors, SVHN, image folders, downloads."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
import warnings
import zipfile

import numpy as np
import pytest
import torch
from conftest import SHARED_DATASETS

from quantscope import data
from quantscope.data import DatasetFileError
from quantscope.data.files import fetch_file
from quantscope.data.readers import read_svhn_mat

needs_shared = pytest.mark.skipif(not (SHARED_DATASETS / "MANIFEST.json").exists(), reason=f"shared datasets not found at {SHARED_DATASETS}")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep decoded archives in a per-session cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv(data.ENV_VAR, raising=False)


@needs_shared
def test_mnist_sizes_counts_and_pixels_equal_the_raw_idx_bytes():
    train = data.load("mnist", "train", SHARED_DATASETS)
    test = data.load("mnist", "test", SHARED_DATASETS)
    assert (len(train), len(test), train.shape) == (60000, 10000, (1, 28, 28))
    assert train.images.dtype == torch.uint8
    assert train.class_counts() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert test.class_counts() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    raw = gzip.open(SHARED_DATASETS / "mnist" / "t10k-images-idx3-ubyte.gz").read()[16:]
    assert hashlib.md5(test.images.numpy().tobytes()).hexdigest() == hashlib.md5(raw).hexdigest()
    assert int(train.labels[0]) == 5 and int(train.images[0].sum()) == 27525  # the famous first "5"


@needs_shared
def test_fashion_mnist_has_balanced_classes():
    train = data.load("fashion-mnist", "train", SHARED_DATASETS)
    test = data.load("fashion-mnist", "test", SHARED_DATASETS)
    assert train.class_counts() == [6000] * 10 and test.class_counts() == [1000] * 10
    assert train.classes[9] == "ankle-boot"


@needs_shared
def test_cifar10_jpeg_archive_decodes_to_the_canonical_layout():
    test = data.load("cifar10-jpeg", "test", SHARED_DATASETS)
    assert (len(test), test.shape, test.class_counts()) == (10000, (3, 32, 32), [1000] * 10)
    assert test.classes[0] == "airplane" and not test.lossless
    assert abs(test.images.float().mean().item() / 255 - 0.4734) < 0.01  # CIFAR-10 test mean pixel
    train = data.load("cifar10-jpeg", "train", SHARED_DATASETS)
    assert len(train) == 50000 and train.class_counts() == [5000] * 10


@needs_shared
def test_validation_split_is_ten_percent_per_class_seeded_and_disjoint():
    test = data.load("mnist", "test", SHARED_DATASETS)
    val = data.load("mnist", "val", SHARED_DATASETS, seed=0)
    rest = data.load("mnist", "test_rest", SHARED_DATASETS, seed=0)
    assert val.class_counts() == [round(c / 10) for c in test.class_counts()]
    assert len(val) + len(rest) == len(test)
    vi = set(data.val_indices(test.labels, 0).tolist())
    assert len(vi) == len(val)
    # disjoint: together val and rest are exactly the test set (multiset of images)
    joined = torch.cat([val.images, rest.images]).flatten(1)
    key = lambda t: sorted(map(bytes, t.numpy()))  # noqa: E731
    assert key(joined) == key(test.images.flatten(1))
    assert data.val_indices(test.labels, 0).tolist() == sorted(vi)
    assert data.val_indices(test.labels, 1).tolist() != sorted(vi)


@needs_shared
def test_truncated_file_names_the_file_and_how_to_get_it(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in (SHARED_DATASETS / "mnist").iterdir():
        shutil.copy(f, folder / f.name)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(DatasetFileError, match=r"t10k-labels-idx1-ubyte.gz is truncated or corrupted: .*expected ec29112dd5afa0611ce80d1b7f02629c.*quantscope datasets fetch mnist"):
        data.load("mnist", "test", tmp_path)


def test_missing_file_lists_where_it_looked(tmp_path):
    with pytest.raises(DatasetFileError, match=r"(?s)file train-images-idx3-ubyte.gz not found; looked in:.*" + str(tmp_path) + r".*quantscope datasets fetch mnist.*QUANTSCOPE_DATA_DIR"):
        data.load("mnist", "train", tmp_path)


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnsit' \(did you mean 'mnist'\?\)"):
        data.load("mnsit")
    with pytest.raises(ValueError, match=r"unknown split 'tset' \(did you mean 'test'\?\)"):
        data.load("digits", "tset")


def test_svhn_mat_reader_on_files_in_the_canonical_layout(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(32, 32, 3, 5), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9]], dtype=np.uint8)  # 10 is the digit 0
    path = tmp_path / "train_32x32.mat"
    savemat(path, {"X": x, "y": y})
    images, labels = read_svhn_mat(path)
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == [0, 1, 2, 0, 9]
    assert np.array_equal(images[1, 2], x[:, :, 2, 1])
    # the loader checks the canonical checksum, so this hand-made file is rejected clearly
    (tmp_path / "svhn").mkdir()
    path.rename(tmp_path / "svhn" / "train_32x32.mat")
    with pytest.raises(DatasetFileError, match=r"train_32x32.mat is truncated or corrupted.*e26dedcc434d2e4c54c9b2d4a06d8373"):
        data.load("svhn", "train", tmp_path)


def test_digits_ship_offline_with_a_stratified_split():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert len(train) + len(test) == 1797 and train.shape == (1, 8, 8)
    assert int(train.images.max()) == 16 and train.max_value == 16
    assert all(abs(t - 0.2 * (t + r)) <= 0.5 for t, r in zip(test.class_counts(), train.class_counts()))
    x, y = train.tensors(limit=4)
    assert x.shape == (4, 1, 8, 8) and x.dtype == torch.float32


def test_every_normalization_maps_the_raw_pixels_as_documented():
    ds = data.load("digits", "train")
    raw = ds.images[:3].to(torch.float64)
    mean, std = torch.tensor(ds.mean, dtype=torch.float64).view(1, -1, 1, 1), torch.tensor(ds.std, dtype=torch.float64).view(1, -1, 1, 1)
    expected = {"unit": raw / 16, "standard": (raw / 16 - mean) / std, "caffe": raw - 16 * mean}  # caffe: pixel units minus the mean
    for name, want in expected.items():
        got = ds.with_normalize(name).tensors(limit=3)[0]
        assert torch.allclose(got.double(), want, atol=1e-5), name
    with pytest.raises(ValueError, match="one of standard, unit, caffe, got 'pixels'"):
        ds.with_normalize("pixels")


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((4, 5, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["dir", "zip", "tar.gz"])
def test_image_folder_as_directory_zip_or_tarball(tmp_path, kind):
    files = {f"{split}/{cls}/{i}.png": _png(10 * i + (100 if cls == "b" else 0)) for split in ("train", "test") for cls in ("a", "b") for i in range(3)}
    if kind == "dir":
        root = tmp_path / "imgs"
        for rel, blob in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(blob)
    elif kind == "zip":
        root = tmp_path / "imgs.zip"
        with zipfile.ZipFile(root, "w") as z:
            for rel, blob in files.items():
                z.writestr(rel, blob)
    else:
        root = tmp_path / "imgs.tar.gz"
        with tarfile.open(root, "w:gz") as t:
            for rel, blob in files.items():
                info = tarfile.TarInfo(rel)
                info.size = len(blob)
                t.addfile(info, io.BytesIO(blob))
    ds = data.load(str(root), "train")
    assert ds.classes == ("a", "b") and ds.shape == (3, 4, 5) and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images[:, 0, 0, 0].tolist() == [0, 10, 20, 100, 110, 120]
    again = data.load(str(root), "test")  # second read comes from the decoded cache
    assert len(again) == 6


def _tarball(path, members):
    """A .tar.gz of (name, bytes) files and (name, None) symlinks."""
    with tarfile.open(path, "w:gz") as t:
        for name, blob in members:
            info = tarfile.TarInfo(name)
            if blob is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                t.addfile(info)
            else:
                info.size = len(blob)
                t.addfile(info, io.BytesIO(blob))
    return path


def test_image_archive_faults_name_the_member_or_the_archive(tmp_path):
    good = [(f"train/a/{i}.png", _png(i)) for i in range(3)]
    broken = _tarball(tmp_path / "broken.tar.gz", good + [("train/a/9.png", b"not a png")])
    with pytest.raises(DatasetFileError, match=r"broken.tar.gz: image train/a/9.png cannot be decoded"):
        data.load(str(broken), "train")
    link = _tarball(tmp_path / "link.tar.gz", good + [("train/a/evil.png", None)])
    with pytest.raises(DatasetFileError, match=r"link.tar.gz: member train/a/evil.png is a link or special file"):
        data.load(str(link), "train")
    whole = _tarball(tmp_path / "whole.tar.gz", good * 20).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetFileError, match=r"cut.tar.gz: (truncated or corrupted archive|not a folder)"):
        data.load(str(cut), "train")
    folder = tmp_path / "folder" / "train" / "a"
    folder.mkdir(parents=True)
    (folder / "0.png").write_bytes(_png(0))
    (folder / "1.png").symlink_to("/etc/passwd")
    with pytest.raises(DatasetFileError, match=r"train/a/1.png is a link or special file"):
        data.load(str(tmp_path / "folder"), "train")


def test_download_is_verified_and_atomic(tmp_path):
    payload = b"hello quantscope"
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    good = data.RemoteFile("file.bin", hashlib.md5(payload).hexdigest(), (src.as_uri(),))
    spec = data.DatasetSpec("toy", "toy dataset", "toy", (good,), ("x",), (0.0,), (1.0,))
    path = fetch_file(spec, good, tmp_path / "toy")
    assert path.read_bytes() == payload and not list((tmp_path / "toy").glob("*.part"))
    bad = data.RemoteFile("other.bin", "0" * 32, (src.as_uri(),))
    with pytest.raises(DatasetFileError, match="could not download other.bin"):
        fetch_file(spec, bad, tmp_path / "toy")
    assert not (tmp_path / "toy" / "other.bin").exists() and not list((tmp_path / "toy").glob("*.part"))


def test_cifar10_python_batches_reader_on_the_canonical_layout(tmp_path):
    import pickle

    from quantscope.data.readers import read_cifar_python

    rng = np.random.default_rng(1)
    path = tmp_path / "cifar-10-python.tar.gz"
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
            y = rng.integers(0, 10, size=4).tolist()
            batches[name] = (x, y)
            blob = pickle.dumps({b"data": x, b"labels": y, b"batch_label": name.encode()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    (train_x, train_y), (test_x, test_y) = read_cifar_python(path)
    assert train_x.shape == (20, 3, 32, 32) and test_x.shape == (4, 3, 32, 32)
    assert np.array_equal(train_x[4].reshape(-1), batches["data_batch_2"][0][0])  # batches in order, row-major CHW
    assert test_y.tolist() == batches["test_batch"][1]


def test_files_are_found_in_data_dir_then_environment_then_cache(tmp_path, monkeypatch):
    from quantscope.data import search_roots

    monkeypatch.setenv("QUANTSCOPE_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert search_roots(tmp_path / "arg") == [tmp_path / "arg", tmp_path / "env", tmp_path / "cache" / "quantscope" / "datasets"]
    monkeypatch.delenv("QUANTSCOPE_DATA_DIR")
    assert search_roots() == [tmp_path / "cache" / "quantscope" / "datasets"]


def test_a_corrupt_decoded_image_cache_is_named_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "imgs"
    for rel in ("train/a/0.png", "train/b/0.png", "test/a/0.png", "test/b/0.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(_png(100 if "/b/" in rel else 7))
    first = data.load(str(root), "train").images.clone()
    (cache,) = (tmp_path / "cache").rglob("*.npz")
    cache.write_bytes(cache.read_bytes()[:100])  # a write killed half-way, or a bad disk
    with pytest.warns(UserWarning, match=f"decoded-image cache {cache} is unreadable"):
        again = data.load(str(root), "train").images
    assert torch.equal(again, first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(data.load(str(root), "train").images, first)  # rebuilt: read without a warning
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temp file left
