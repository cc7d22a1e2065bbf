"""The `quantscope` command line."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from .formats import Format, parse_format

app = typer.Typer(
    name="quantscope",
    help="How few bits can this network use, in which number format, and what does it buy?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)
_state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    """quantscope: number-format emulation, hardware cost models and precision search."""
    _state["debug"] = debug


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print bad-input errors as one line (exit 2) unless --debug asks for the traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as err:
            if _state["debug"]:
                raise
            console.print(f"[bold red]error:[/] {err}", highlight=False)
            raise typer.Exit(2) from None

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


def format_summary(fmt: Format) -> dict[str, Any]:
    """The facts `quantscope formats` shows about one static format."""
    return {
        "format": str(fmt),
        "bits": fmt.bits,
        "min": fmt.min_value,
        "max": fmt.max_value,
        "min_positive": fmt.min_positive,
        "step": fmt.step,
        "values": fmt.num_values,
    }


@app.command()
@friendly_errors
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
        rows.append(format_summary(fmt))
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
    console.print(table)


def run() -> None:  # pragma: no cover - console entry point
    """Entry point for `python -m quantscope`."""
    app(prog_name="quantscope")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
