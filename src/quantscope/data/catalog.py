"""Where each dataset's canonical files come from, and how to recognize a good copy."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RemoteFile", "DatasetSpec", "DIGITS", "SPECS"]


@dataclass(frozen=True)
class RemoteFile:
    """One canonical file: its name, mirrors, and checksums of the file and of its content.

    `md5` is the published checksum of the file as distributed; `content_md5`, for gzip files,
    that of the decompressed bytes, so a re-compressed but identical copy is accepted too.
    """

    name: str
    md5: str
    urls: tuple[str, ...]
    content_md5: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its files (under a folder named `folder`), classes and normalization."""

    name: str
    title: str
    folder: str
    files: tuple[RemoteFile, ...]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    lossless: bool = True
    note: str = ""
    extra: dict = field(default_factory=dict)


def _mirrored(name: str, md5: str, bases: tuple[str, ...], content_md5: str | None = None) -> RemoteFile:
    return RemoteFile(name, md5, tuple(b + name for b in bases), content_md5)


_MNIST_BASES = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_BASES = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
DIGITS = tuple(str(i) for i in range(10))

SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist", "MNIST handwritten digits (28x28 grey, 60,000 train / 10,000 test)", "mnist",
        (
            _mirrored("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", _MNIST_BASES, "6bbc9ace898e44ae57da46a324031adb"),
            _mirrored("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", _MNIST_BASES, "a25bea736e30d166cdddb491f175f624"),
            _mirrored("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", _MNIST_BASES, "2646ac647ad5339dbf082846283269ea"),
            _mirrored("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", _MNIST_BASES, "27ae3e4e09519cfbb04c329615203637"),
        ),
        DIGITS, (0.1307,), (0.3081,),
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", "Fashion-MNIST (28x28 grey, 60,000 train / 10,000 test)", "fashion-mnist",
        (
            _mirrored("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", _FASHION_BASES, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            _mirrored("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", _FASHION_BASES, "9018921c3c673c538a1fc5bad174d6f9"),
            _mirrored("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", _FASHION_BASES, "8181f5470baa50b63fa0f6fddb340f0a"),
            _mirrored("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", _FASHION_BASES, "15d484375f8d13e6eb1aabb0c3f46965"),
        ),
        ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"),
        (0.2860,), (0.3530,),
    ),
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10, canonical python batches (32x32 RGB, 50,000 / 10,000)", "cifar10",
        (RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)),),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar10-jpeg": DatasetSpec(
        "cifar10-jpeg", "CIFAR-10 as a JPEG image-folder archive (lossy copy; labels and order exact)", "cifar10",
        (RemoteFile("cifar10-jpeg.tar.gz", "1305e62a50e4706d19c8747004d1d1a2", ()),),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        lossless=False,
        note="JPEG-compressed pixels (mean absolute error ~5.8/255): accuracies differ from published CIFAR-10 numbers",
    ),
    "svhn": DatasetSpec(
        "svhn", "SVHN cropped digits (32x32 RGB, 73,257 train / 26,032 test)", "svhn",
        (
            RemoteFile("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373", ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",)),
            RemoteFile("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3", ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",)),
        ),
        DIGITS, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
    ),
    "fortunes": DatasetSpec(
        "fortunes", "Debian fortunes as byte-level text (1.98 MB, 11,201 entries; windows of 64 bytes)", "text",
        (RemoteFile("fortunes-text.tar.gz", "0232d8f79eaefc0cfee7ec9fd3be40f7", ()),),
        tuple(str(b) for b in range(256)), (0.0,), (1.0,),
        note="entries split 90/10 into train/test with seed 0 (val: half the test entries, test_rest: the other half); "
             "each split's entries joined by newlines and cut into 64-byte windows with next-byte targets",
        extra={"kind": "text", "context": 64},
    ),
    "digits": DatasetSpec(
        "digits", "scikit-learn's 8x8 digits (1,797 images, ships with scikit-learn: offline)", "",
        (), DIGITS, (0.3051,), (0.3770,),
        note="values 0..16; split 80/20 per class with seed 0",
    ),
}
