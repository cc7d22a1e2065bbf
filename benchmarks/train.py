"""Train the papers' networks on CPU, then fine-tune LeNet at Hashemi's precisions.

    python benchmarks/train.py [--only lenet,mlp,qat,cifarnet,alex] [--data-dir ../shared/datasets]

Prints accuracy and wall time per network and the QAT table beside Hashemi's Table IV, saves
float checkpoints to checkpoints/<model>-<dataset>.pt (small: committed for later issues and the
demo) and the results to benchmarks/results/train.json. CIFAR-10 here is the shared JPEG copy
(lossy): accuracies on it are not directly comparable with published CIFAR-10 numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import quantscope as qs
from quantscope import data, models, published
from quantscope.train import TrainConfig, evaluate, finetune, save_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]

FLOAT_RUNS = {
    # name: (model, dataset, config, target accuracy)
    "lenet": ("lenet", "mnist", TrainConfig(epochs=12, batch_size=64, lr=0.05, weight_decay=5e-4), 0.990),
    "mlp": ("mlp", "mnist", TrainConfig(epochs=20, batch_size=128, lr=1e-3, optimizer="adam", weight_decay=0.0), 0.980),
    "cifarnet": ("cifarnet", "cifar10-jpeg", TrainConfig(epochs=25, batch_size=128, lr=0.05, augment=True), 0.70),
    "alex": ("alex", "cifar10-jpeg", TrainConfig(epochs=30, batch_size=128, lr=0.05, augment=True), 0.75),
}

# Hashemi Table IV, MNIST column; binary weights use a per-layer mean scale (binary<mean>):
# unscaled +-1 weights make LeNet's activations overflow the 16-bit data range
HASHEMI_MNIST = {
    label: ("binary<mean>" if w == "binary" else None if w == "float32" else w, None if d == "float32" else d, acc)
    for (label, (w, d)), acc in zip(published.HASHEMI_PRECISIONS.items(), published.HASHEMI_ACCURACY_PCT["lenet"])
}


def run_float(name: str, data_dir: str, results: dict) -> None:
    model_name, dataset, cfg, target = FLOAT_RUNS[name]
    norm = models.info(model_name).normalize
    tr = data.load(dataset, "train", data_dir, normalize=norm)
    te = data.load(dataset, "test", data_dir, normalize=norm)
    model = models.create(model_name, seed=cfg.seed)
    start = time.perf_counter()
    curve = []
    hist = train(model, tr, cfg, te, progress=False, on_epoch=lambda m: (curve.append(round(m.eval_accuracy, 4)), print(
        f"  {name} epoch {m.epoch:3d} loss {m.loss:.4f} test {m.eval_accuracy:.4f} ({m.seconds:.0f} s)", flush=True)))
    seconds = time.perf_counter() - start
    acc = hist.final_accuracy
    path = ROOT / "checkpoints" / f"{model_name}-{dataset}.pt"
    save_checkpoint(path, model, {"dataset": dataset, "seed": cfg.seed, "accuracy": acc, "epochs": cfg.epochs, "normalize": norm})
    results[name] = {"model": model_name, "dataset": dataset, "accuracy": acc, "target": target, "met": acc >= target,
                     "seconds": round(seconds, 1), "epochs": cfg.epochs, "curve": curve, "checkpoint": str(path.relative_to(ROOT)),
                     "lossless_data": tr.lossless}
    print(f"{name} on {dataset}: test accuracy {acc:.4f} (target {target}) in {seconds / 60:.1f} min -> {path.relative_to(ROOT)}", flush=True)


def run_qat(data_dir: str, results: dict) -> None:
    ckpt = ROOT / "checkpoints" / "lenet-mnist.pt"
    model, meta = qs.train.load_model(ckpt)
    tr = data.load("mnist", "train", data_dir, normalize="unit")
    te = data.load("mnist", "test", data_dir, normalize="unit")
    calib = tr.tensors(limit=512)[0]
    rows = []
    cfg = TrainConfig(epochs=2, batch_size=64, lr=5e-3, weight_decay=0.0)
    for label, (wf, df, paper) in HASHEMI_MNIST.items():
        start = time.perf_counter()
        if wf is None:
            ptq = qat = evaluate(model, te)
        else:
            plan = qs.PrecisionPlan.uniform(weights=wf, data=df, bias="float32" if wf.startswith("binary") else None)
            ptq = evaluate(qs.emulate(model, plan, calibration=calib), te)
            _, hist = finetune(model, plan, tr, cfg, te, calibration=calib)
            qat = hist.final_accuracy
        rows.append({"precision": label, "weights": wf or "float32", "data": df or "float32", "post_training": ptq,
                     "qat": qat, "paper": paper, "seconds": round(time.perf_counter() - start, 1)})
        print(f"  {label:24s} PTQ {100 * ptq:6.2f}  QAT {100 * qat:6.2f}  Hashemi {paper:6.2f}", flush=True)
    results["qat_lenet_mnist"] = rows
    print("\n| precision (w, in) | weights | data | post-training (%) | after QAT (%) | Hashemi Table IV (%) |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['precision']} | `{r['weights']}` | `{r['data']}` | {100 * r['post_training']:.2f} | {100 * r['qat']:.2f} | {r['paper']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="lenet,mlp,qat,cifarnet,alex")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = ROOT / "benchmarks" / "results" / "train.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    for task in args.only.split(","):
        if task == "qat":
            run_qat(args.data_dir, results)
        else:
            run_float(task, args.data_dir, results)
        out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
