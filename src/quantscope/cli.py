"""The `quantscope` command line."""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from .errors import UnsupportedFormat, did_you_mean
from .executors import RAY_CONNECT_TIMEOUT, WorkerDied
from .formats import Format, parse_format
from .train import TrainConfig

__all__ = ["app", "run"]

_TRAIN = TrainConfig()  # the training defaults the options show

app = typer.Typer(
    name="quantscope",
    help="How few bits can this network use, in which number format, and what does it buy?",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# output is plain text: values such as "[red]fixed<8,4>" or a path with brackets print as they are
_console = Console(width=None if sys.stdout.isatty() else 160, markup=False, highlight=False)
_state = {"debug": False}


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        typer.echo(f"quantscope {version('quantscope')}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors (anywhere on the command line)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """quantscope: number-format emulation, hardware cost models and precision search."""
    _state["debug"] = debug
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM ends a command as Ctrl-C does: stored work is kept and said so."""
    raise KeyboardInterrupt


#: errors that mean the input (arguments, files, folders) is wrong: exit status 2
BAD_INPUT = (ValueError, OSError, yaml.YAMLError)


def _fail(message: str, status: int) -> NoReturn:
    """Print one plain line on stderr and exit with `status`."""
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    raise typer.Exit(status)


def _friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The one error path of every command: bad input is one plain line on stderr (exit 2), an
    internal error one line naming its type (exit 1), Ctrl-C exit 130; --debug re-raises."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt as err:
            sys.stderr.write("interrupted" + (f": {err}" if str(err) else "") + "\n")
            raise typer.Exit(130) from None
        except WorkerDied as err:
            _fail(str(err), 1)
        except BAD_INPUT as err:
            if _state["debug"]:
                raise
            _fail(str(err) or type(err).__name__, 2)
        except Exception as err:
            if _state["debug"]:
                raise
            _fail(f"internal error ({type(err).__name__}: {err}); rerun with --debug for the traceback", 1)

    return wrapper


def _number(v: float | None) -> str:
    if v is None:
        return "non-uniform"
    if v == 0 or math.isinf(v):
        return "0" if v == 0 else str(v)
    exp = math.log2(abs(v))
    if exp == int(exp) and abs(exp) > 6:
        return f"{'-' if v < 0 else ''}2^{int(exp)}"
    return f"{v:.6g}"


def _format_summary(fmt: Format) -> dict[str, Any]:
    """The facts `quantscope formats` shows about one static format (a scaled format's bits per
    value include its block scale; its values are a block's element codes)."""
    return {
        "format": str(fmt),
        "bits": fmt.bits if fmt.bits_per_value == fmt.bits else fmt.bits_per_value,
        "min": fmt.min_value,
        "max": fmt.max_value,
        "min_positive": fmt.min_positive,
        "step": fmt.step,
        "values": fmt.num_values,
    }


@app.command()
@_friendly_errors
def formats(
    specs: list[str] = typer.Argument(..., metavar="FMT...", help="Format strings, e.g. fixed<8,4> float<4,3> e4m3fn pow2<6,0>."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Describe number formats: bits, range, smallest step, number of values.

    Examples:

      quantscope formats fixed<8,4> float<5,10> e4m3fn pow2<6,0> binary

      quantscope formats "fixed<16,8>" --json
    """
    rows = []
    for spec in specs:
        fmt = parse_format(spec)
        if fmt.adaptive:
            raise ValueError(
                f"{fmt} is adaptive (its grid is chosen per tensor); give a static form such as "
                f"{'fixed<8,4>' if fmt.kind == 'fixed' else 'pow2<6,0>' if fmt.kind == 'pow2' else 'binary'}"
            )
        rows.append(_format_summary(fmt))
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title="number formats")
    for col in ("format", "bits", "range", "smallest positive", "step", "values"):
        table.add_column(col, justify="left" if col == "format" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["format"], str(r["bits"]), f"[{_number(r['min'])}, {_number(r['max'])}]",
            _number(r["min_positive"]), _number(r["step"]), f"{r['values']:,}",
        )
    _console.print(table)


datasets_app = typer.Typer(help="List and download datasets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

_PLAN_HELP = "A plan file (.yaml/.json), 'WEIGHTS,DATA' formats, or one format for both, e.g. fixed<8,auto>."
_DATA_DIR_HELP = "Folder holding dataset files (else $QUANTSCOPE_DATA_DIR, then the user cache)."


@datasets_app.command("list")
@_friendly_errors
def datasets_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the registered datasets and their files.

    Example: quantscope datasets list
    """
    from .data import SPECS

    rows: list[dict[str, Any]] = [{"name": s.name, "title": s.title, "files": [f.name for f in s.files], "lossless": s.lossless}
                                  for s in SPECS.values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title="datasets")
    for col in ("name", "description", "files"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["title"], ", ".join(r["files"]) or "(ships with scikit-learn)")
    _console.print(table)


@datasets_app.command("fetch")
@_friendly_errors
def datasets_fetch(
    name: str = typer.Argument(..., help="Dataset name (see `quantscope datasets list`)."),
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
) -> None:
    """Download a dataset's canonical files (if missing) and verify their checksums.

    Example: quantscope datasets fetch mnist --data-dir ~/data
    """
    from . import data

    for path in data.fetch(name, data_dir):
        _console.print(f"ok  {path}")


def _writable_folder(path: Path) -> None:
    """Raise now, before hours of work, if `path` cannot be written."""
    from .files import write_atomic

    try:
        write_atomic(path.parent / f".{path.name}.check", "")
        (path.parent / f".{path.name}.check").unlink()
    except OSError as err:
        raise ValueError(f"cannot write {str(path)!r}: {err.strerror or err}") from None


@app.command("train")
@_friendly_errors
def train_cmd(
    model: str = typer.Argument(..., help="Registered network (lenet, cifarnet, alex, resnet20, vit, lstm-mnist, gpt-char, ...)."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset (default: the network's own)."),
    epochs: int = typer.Option(_TRAIN.epochs, "--epochs", min=1),
    batch_size: int = typer.Option(_TRAIN.batch_size, "--batch-size", min=1),
    lr: float = typer.Option(_TRAIN.lr, "--lr"),
    optimizer: str = typer.Option(_TRAIN.optimizer, "--optimizer", help="sgd or adam."),
    weight_decay: float = typer.Option(_TRAIN.weight_decay, "--weight-decay"),
    augment: bool = typer.Option(False, "--augment", help="Random crops and flips."),
    width: float = typer.Option(1.0, "--width", help="Width multiplier."),
    seed: int = typer.Option(0, "--seed"),
    out: str = typer.Option(None, "--out", help="Checkpoint path (default checkpoints/MODEL-DATASET.pt)."),
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT.progress (saved after every epoch)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing checkpoint (or start over an interrupted run)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu or cuda."),
    normalize: str = typer.Option(None, "--normalize", help="Input normalization: standard, unit or caffe (default: the network's own)."),
) -> None:
    """Train a registered network in float and save a checkpoint.

    The run's state is saved after every epoch to OUT.progress; if it is interrupted, run the same
    command with --resume to continue from the last finished epoch (same result as an
    uninterrupted run). An existing checkpoint is never overwritten without --force.

    Example: quantscope train lenet --dataset mnist --epochs 12 --batch-size 64 --data-dir ../shared/datasets
    """
    from .train import TrainConfig

    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, weight_decay=weight_decay, augment=augment, seed=seed)
    _train(model, dataset, cfg, width, out, data_dir, resume, force, device, normalize)


def _train(model: str, dataset: str | None, cfg: Any, width: float, out: str | None, data_dir: str | None, resume: bool, force: bool,
           device: str, normalize: str | None = None) -> None:
    """`quantscope train`: check the output first, train resumably, write the checkpoint."""
    import torch

    from . import data, models
    from .train import check_fits, save_checkpoint, train

    spec = models.info(model)
    dataset = dataset or spec.dataset
    normalize = normalize or spec.normalize
    if normalize not in data.NORMALIZATIONS:
        raise ValueError(f"--normalize {normalize!r}: choose one of {', '.join(data.NORMALIZATIONS)}")
    path = Path(out or f"checkpoints/{model}-{dataset}.pt")
    progress_file = path.with_name(path.name + ".progress")
    if path.is_dir():
        raise ValueError(f"--out {str(path)!r} is a folder; give a file path such as {str(path / 'model.pt')!r}")
    if path.exists() and not force:
        raise ValueError(f"{path} exists; pass --force to overwrite it, or --out to write elsewhere")
    if progress_file.exists() and not (resume or force):
        raise ValueError(f"{progress_file} holds an interrupted run; pass --resume to continue it or --force to start over")
    if force:
        progress_file.unlink(missing_ok=True)
    _writable_folder(path)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    tr = data.load(dataset, "train", data_dir, normalize=normalize)
    te = data.load(dataset, "test", data_dir, normalize=normalize)
    net = models.create(model, width=width, seed=cfg.seed)
    check_fits(net, tr, model)
    net = net.to(device)
    result = train(net, tr, cfg, te, progress=True, progress_file=progress_file, on_epoch=lambda m: _console.print(
        f"epoch {m.epoch:3d}  loss {m.loss:.4f}  train {m.train_accuracy:.4f}  test {m.eval_accuracy:.4f}  {m.seconds:.0f}s"))
    meta = {"dataset": dataset, "seed": cfg.seed, "accuracy": result.final_accuracy, "epochs": cfg.epochs, "normalize": normalize,
            "history": [{"epoch": m.epoch, "test_accuracy": m.eval_accuracy, "seconds": m.seconds} for m in result.history]}
    save_checkpoint(path, net.cpu(), meta)
    progress_file.unlink(missing_ok=True)
    _console.print(f"test accuracy {result.final_accuracy:.4f}; checkpoint written to {path}")


@app.command("eval")
@_friendly_errors
def eval_cmd(
    checkpoint: str = typer.Argument(..., help="A checkpoint written by `quantscope train`."),
    plan: str = typer.Option(None, "--plan", help=_PLAN_HELP),
    split: str = typer.Option("test", "--split", help="train, test, val or test_rest."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset (default: the checkpoint's)."),
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate a checkpoint, in float or emulated under a precision plan.

    Examples:

      quantscope eval checkpoints/lenet-mnist.pt --data-dir ../shared/datasets

      quantscope eval checkpoints/lenet-mnist.pt --plan "fixed<8,auto>" --data-dir ../shared/datasets
    """
    from . import data, emulate, metrics
    from .train import check_fits, load_model, predict

    model, meta = load_model(checkpoint)
    ds = data.load(dataset or meta.get("dataset", "mnist"), split, data_dir, normalize=meta.get("normalize", "standard"))
    check_fits(model, ds, meta["model"])
    float_logits = predict(model, ds)
    result = {"checkpoint": checkpoint, "dataset": ds.name, "split": split, "float_accuracy": metrics.topk_accuracy(float_logits, ds.labels)}
    if plan:
        p = _plan_arg(plan)
        qmodel = emulate(model, p, calibration=data.load(ds.name, "train", data_dir, normalize=ds.normalize).tensors(256)[0])
        logits = predict(qmodel, ds)
        assert qmodel.table is not None
        result.update(plan=str(p), accuracy=metrics.topk_accuracy(logits, ds.labels),
                      mismatch=metrics.mismatch_rate(float_logits, logits), r2=metrics.r_squared(float_logits, logits),
                      macs_emulated=qmodel.table.coverage, emulation=qmodel.table.coverage_note())
    if as_json:
        typer.echo(json.dumps(result, indent=1))
        return
    for k, v in result.items():
        _console.print(f"{k:15s} {v:.4f}" if isinstance(v, float) else f"{k:15s} {v}")


def _plan_arg(plan: str | None):
    """A plan from a .yaml/.json file, `W,D` (weights and data formats) or one format for both."""
    from .plan import PrecisionPlan

    return PrecisionPlan.from_argument(plan)


@app.command("cost")
@_friendly_errors
def cost_cmd(
    model: str = typer.Argument(..., help="Registered network or a checkpoint (.pt)."),
    plan: str = typer.Option(None, "--plan", help=_PLAN_HELP),
    hardware: str = typer.Option("hashemi65", "--hardware", help="Accelerator table name or YAML path."),
    batch: int = typer.Option(1, "--batch", help="Batch size for weight traffic (1 = single image)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Price a network under a precision plan: footprint, traffic, full adders, accelerator energy.

    Examples:

      quantscope cost lenet --plan "fixed<8,auto>"

      quantscope cost alexnet --plan "pow2<6>,fixed<16,auto>" --batch 64

      quantscope cost lenet --plan plan.yaml --hardware my_accelerator.yaml --json
    """
    net, name, x = _network(model)
    p = _plan_arg(plan)
    rows, totals, note = _cost_report(net, p, x, hardware, batch)
    if as_json:
        typer.echo(json.dumps({"model": name, "plan": p.to_dict(), "hardware": hardware, "batch": batch, "layers": rows, "totals": totals}, indent=1))
        return
    t = Table(title=f"{name} under [{p.default}] on {hardware}")
    cols = ["op", "kind", "MACs", "weights", "w bits", "d bits", "params KiB", "full adders", "cycles", "energy uJ"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("op", "kind") else "right", no_wrap=True)
    def cell(v: Any, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    for r in rows:
        t.add_row(r["layer"], r["kind"], f"{r['macs']:,}", f"{r['weights']:,}", cell(r["w_bits"], "g"), cell(r["d_bits"], "g"),
                  f"{r['param_kib']:.1f}", cell(r["full_adders"], ".3g"), cell(r["cycles"], ","), cell(r["energy_uj"], ".3f"))
    t.add_row("total", "", f"{totals['macs']:,}", "", "", "", f"{totals['param_kib']:.1f}", cell(totals["full_adders"], ".3g"),
              cell(totals["cycles"], ","), cell(totals["energy_uj"], ".3f"), style="bold")
    _console.print(t)
    _console.print(f"memory traffic per image (batch {batch}): {totals['traffic_mbit']:.3f} Mbit, "
                  f"{totals['traffic_ratio']:.3f} of 32-bit (data only: {totals['data_traffic_ratio']:.3f})")
    _console.print(note)


@app.command("export")
@_friendly_errors
def export_cmd(
    model: str = typer.Argument(..., help="Registered network or a checkpoint (.pt)."),
    plan: str = typer.Option(..., "--plan", help=_PLAN_HELP),
    out: str = typer.Option(..., "--out", help="Folder to write (created; files in it are replaced atomically)."),
    fmt: str = typer.Option("npz", "--format", help="npz (manifest and integer arrays), qonnx or onnx-qdq."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset whose train split calibrates ranges (default: the model's)."),
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    rounding: str = typer.Option("nearest", "--rounding", help="nearest, floor or toward_zero."),
    batch: int = typer.Option(None, "--batch", help="ONNX input batch size (default: symbolic for onnx-qdq, 1 for qonnx)."),
    check: int = typer.Option(0, "--check", help="npz: run the integer executor on this many test images and compare with emulate()."),
    trace: str = typer.Option(None, "--trace", help="npz: print this op's integer weights and one neuron's integer accumulation."),
) -> None:
    """Export the integers hardware computes: weights, biases, formats, accumulators, the graph.

    Examples:

      quantscope export checkpoints/lenet-mnist.pt --plan "fixed<8,auto>" --out lenet-int8 --data-dir ../shared/datasets --check 1000

      quantscope export checkpoints/lenet-mnist.pt --plan plan.yaml --out lenet-qonnx --format qonnx --data-dir ../shared/datasets
    """
    from . import data
    from .emulation import layers
    from .export import FORMATS, export
    from .train import check_fits

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if (check or trace) and fmt != "npz":
        raise ValueError("--check and --trace run the integer executor: they need --format npz")
    net, name, meta = _export_network(model)
    ds_name = dataset or meta.get("dataset")
    if ds_name is None:
        raise ValueError(f"{model}: say which dataset calibrates its ranges with --dataset")
    norm = meta.get("normalize", "standard")
    train_set = data.load(ds_name, "train", data_dir, normalize=norm)
    check_fits(net, train_set, name)
    calibration = train_set.tensors(limit=256)[0]
    if trace:
        ops = [o.name for o in layers(net, calibration[:1]) if o.macs]
        if trace not in ops:
            raise ValueError(f"--trace {trace!r}: no product op of that name{did_you_mean(trace, ops)}; ops: {', '.join(ops)}")
    res = export(net, _plan_arg(plan), calibration, out, fmt, rounding=rounding, batch=batch)
    _console.print(f"exported {name} ({len(res.ops)} product ops) to {', '.join(str(f) for f in res.files)}")
    if check or trace:
        _check_export(Path(out), res, data.load(ds_name, "test", data_dir, normalize=norm), check, trace)


def _export_network(model: str) -> tuple[Any, str, dict[str, Any]]:
    """(network in eval mode, its name, its checkpoint's metadata) of a registered name or a checkpoint."""
    from . import models
    from .train import load_model

    if Path(model).suffix == ".pt":
        net, meta = load_model(model)
        return net.eval(), meta["model"], meta
    return models.create(model).eval(), model, {"dataset": models.info(model).dataset}


def _check_export(out: Path, res: Any, test: Any, check: int, trace: str | None) -> None:
    """The integer executor against emulate() on `check` test images; an op's integers and trace."""
    import numpy as np
    import torch

    from .export import load

    executor = load(out)
    x = test.tensors(limit=max(check, 1))[0]
    if check:
        with torch.no_grad():
            want = res.emulated(x).double().numpy()
        got = executor(x.numpy())
        _console.print(f"integer executor vs emulate() on {len(x)} test images: {int((got == want).sum())} of {want.size} outputs "
                       "bit-identical")
        for warning in executor.warnings:
            _console.print(f"note: {warning}")
    if trace:
        node = next(n for n in executor.manifest["nodes"] if n["name"] == trace)
        w = executor.codes(node["weight"])
        np.set_printoptions(linewidth=120, threshold=200)
        _console.print(f"{trace}: weights {node['weight']['format']} as integers x 2^{node['weight']['exp']} ({node['weight']['datapath']} "
                       f"datapath), output channel 0:\n{w[0]}")
        shape = res.emulated.table[trace].output_shape  # the centre of the first channel's output map
        index = (0, 0) if node["op"] == "linear" else (0, 0, shape[-2] // 2, shape[-1] // 2)
        steps = executor.trace_neuron(trace, x[:1].numpy(), index)
        acc = node["accumulator"]["format"] if node["accumulator"] else "exact (int64)"
        _console.print(f"{trace}, output {index} of the first test image: data {node['data']['format']}, accumulator {acc}; "
                       f"{len(steps)} products")
        _console.print("  k        x        w    product      sum")
        shown = steps if len(steps) <= 32 else steps[:16]
        for k, st in enumerate(shown):
            _console.print(f"{k:3d} {st['x']:8d} {st['w']:8d} {st['product']:10d} {st['sum']:8d}")
        if len(steps) > len(shown):
            _console.print(f"... {len(steps) - len(shown)} more; final sum {steps[-1]['sum']}")


def _network(model: str):
    """(network, name, example input) of a registered name or a checkpoint (.pt)."""
    from . import models
    from .train import load_model

    if Path(model).suffix == ".pt":
        net, meta = load_model(model)
        return net, meta["model"], models.example_input(meta["model"])
    dev = "meta" if models.info(model).dataset == "imagenet" else None
    return models.create(model, device=dev), model, models.example_input(model, device=dev)


def _cost_report(net, plan, x, hardware: str, batch: int) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """(per-op rows, totals, the MAC coverage line) of `quantscope cost`."""
    from . import cost
    from .emulation import layers

    coverage = layers(net, x)
    unpriced: list[str] = []

    def priced(what: str, compute: Callable[[], Any]) -> Any:
        try:
            return compute()
        except UnsupportedFormat as err:  # shown as n/a with the reason, never invented
            unpriced.append(f"{what} not priced: {err}")
            return None

    fa = priced("full adders", lambda: cost.adder_cost(net, plan, x).per_layer)
    acc = priced("cycles and energy", lambda: {layer.name: layer for layer in cost.accelerator_energy(net, plan, x, hardware).layers})
    tr = cost.traffic(net, plan, x, batch_size=batch)
    rows: list[dict[str, Any]] = [{"layer": r.name, "kind": r.info.kind, "macs": r.info.macs, "weights": r.info.weights,
             "w_bits": r.precision.weights.bits_per_value, "d_bits": r.precision.data.bits_per_value,
             "param_kib": (r.weight_storage_bits + r.bias_storage_bits) / 8 / 1024,
             "full_adders": None if fa is None else fa[r.name][0], "cycles": None if acc is None else acc[r.name].cycles,
             "energy_uj": None if acc is None else acc[r.name].energy_uj}
            for r in cost.cost_layers(net, plan, x)]
    totals: dict[str, Any] = {k: None if any(r[k] is None for r in rows) else sum(r[k] for r in rows)
                              for k in ("macs", "param_kib", "full_adders", "cycles", "energy_uj")}
    totals.update(traffic_mbit=tr.total_bits / 1e6, traffic_ratio=tr.ratio, data_traffic_ratio=tr.data_ratio, macs_emulated=coverage.coverage)
    return rows, totals, "\n".join([coverage.coverage_note(), *unpriced])


def _executor(executor: str | None, workers: int | None, address: str | None, connect_timeout: float):
    from .executors import make_executor

    kind = executor or ("ray" if address else "process" if workers and workers > 1 else "inprocess")
    return make_executor(kind, workers, address, connect_timeout)


def _run_study(config, out, executor, workers, address, resume, data_dir, report, connect_timeout=RAY_CONNECT_TIMEOUT):
    from .study import run_study

    ex = _executor(executor, workers, address, connect_timeout)
    try:
        result = run_study(config, out, ex, resume=resume, data_dir=data_dir, report=report, progress=True,
                           log=lambda m: _console.print(m))
    finally:
        ex.close()
    _console.print(f"{result.evaluated} points evaluated, {result.reused} read from the store, {result.seconds:.1f} s; "
                  f"results in {result.store_path}")
    if result.report is not None:
        _console.print(f"report: {result.report}", soft_wrap=True)
    return result


_EXECUTOR_HELP = "inprocess, process (a local pool of --workers) or ray (--address, else a local Ray instance)."


@app.command("study")
@_friendly_errors
def study_cmd(
    config: str = typer.Argument(..., help="A study config (YAML); see docs/studies.md and experiments/configs/."),
    out: str = typer.Option(None, "--out", help="Results folder (default results/NAME)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a study whose folder holds results (stored points are reused)."),
    executor: str = typer.Option(None, "--executor", help=_EXECUTOR_HELP),
    workers: int = typer.Option(None, "--workers", min=1, help="Parallel workers (implies --executor process when > 1)."),
    address: str = typer.Option(None, "--address", help="Ray cluster address (implies --executor ray); ray://HOST:PORT needs 'ray[client]'."),
    connect_timeout: float = typer.Option(RAY_CONNECT_TIMEOUT, "--connect-timeout", min=0.001,
                                          help="Seconds to wait for the Ray cluster at --address to answer."),
    data_dir: str = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML report at the end."),
) -> None:
    """Run a study from a config: float baseline, every run's points, costs, report.

    Points are stored as they complete; stop it at any time and continue with --resume.

    Examples:

      quantscope study experiments/configs/hashemi_lenet.yaml --data-dir ../shared/datasets

      quantscope study my-study.yaml --workers 2 --resume

      quantscope study my-study.yaml --executor ray --address ray://head:10001
    """
    _run_study(config, out, executor, workers, address, resume, data_dir, report, connect_timeout)


@app.command("demo")
@_friendly_errors
def demo_cmd(
    out: str = typer.Option("quantscope-demo", "--out", help="Results folder."),
    executor: str = typer.Option(None, "--executor", help=_EXECUTOR_HELP),
    workers: int = typer.Option(None, "--workers", min=1, help="Parallel workers."),
    show_config: bool = typer.Option(False, "--show-config", help="Print the demo's study config and exit."),
) -> None:
    """The embedded demo: a complete small study on scikit-learn's digits, offline.

    Trains a small CNN (cached), evaluates Hashemi's precisions with QAT, custom-float and
    fixed-point sweeps, Judd's greedy search, per-layer sensitivity and Sakr's bounds with every
    cost model, and writes an HTML report. Re-running it reuses stored points.

    Example: quantscope demo --out quantscope-demo
    """
    from .study import DEMO_CONFIG

    if show_config:
        typer.echo(DEMO_CONFIG.read_text())
        return
    _run_study(DEMO_CONFIG, out, executor, workers, None, True, None, True)


@app.command("report")
@_friendly_errors
def report_cmd(
    results: str = typer.Argument(..., help="A study folder written by `quantscope study` (holds study.json and results.sqlite)."),
    out: str = typer.Option(None, "--out", help="Report folder (default RESULTS/report)."),
) -> None:
    """Write a study's HTML report, its figures as PNG and SVG, and its points as CSV and JSON.

    Example: quantscope report results/digits-demo
    """
    from .report import write_report

    path = write_report(results, out)
    _console.print(f"report: {path}", soft_wrap=True)


@app.command("results")
@_friendly_errors
def results_cmd(
    folder: str = typer.Argument(..., help="A study folder written by `quantscope study`."),
    run: str = typer.Option(None, "--run", help="Only this run's points (with --export)."),
    export: str = typer.Option(None, "--export", help="Write the points to FILE.csv, FILE.json or FILE.parquet (needs pyarrow)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List what a study folder holds (its study, runs and points), or export its points.

    Examples:

      quantscope results quantscope-demo

      quantscope results quantscope-demo --export points.parquet --run judd-greedy
    """
    from . import results

    if export:
        written = results.export(folder, export, run)
        _console.print(f"{written} points written to {export}", soft_wrap=True)
        return
    held = results.contents(folder)
    if as_json:
        typer.echo(json.dumps(held, indent=1))
        return
    table = Table(title=f"study {held['study']} in {held['folder']}: {held['points_stored']} points stored")
    for column in ("run", "kind", "points", "complete", "seconds"):
        table.add_column(column, justify="right" if column in ("points", "seconds") else "left")
    for r in held["runs"]:
        table.add_row(r["run"], r["kind"], str(r["points"]), "yes" if r["complete"] else "no (budget)",
                      "" if r["seconds"] is None else f"{r['seconds']:.1f}")
    _console.print(table)


def _debug_first(argv: list[str]) -> list[str]:
    """--debug is accepted anywhere: moved before the subcommand, where the parser expects it."""
    head, sep, tail = (argv[: argv.index("--")], ["--"], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [], [])
    if "--debug" not in head:
        return argv
    return ["--debug"] + [a for a in head if a != "--debug"] + sep + tail


def run() -> None:  # pragma: no cover - _console entry point
    """Entry point for `quantscope` and `python -m quantscope`."""
    app(args=_debug_first(sys.argv[1:]), prog_name="quantscope")


if __name__ == "__main__":  # pragma: no cover
    run()
