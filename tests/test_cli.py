"""The command line: tables, JSON, one-line errors, --debug tracebacks."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from quantscope.cli import app

runner = CliRunner()


def test_formats_prints_a_table():
    result = runner.invoke(app, ["formats", "fixed<8,4>", "e4m3fn", "pow2<6,0>"])
    assert result.exit_code == 0, result.output
    assert "fixed<8,4>" in result.output and "[-8, 7.9375]" in result.output
    assert "float<4,3,special=fn>" in result.output and "[-448, 448]" in result.output
    assert "2^-30" in result.output  # pow2<6,0> smallest power


def test_formats_json_is_machine_readable():
    result = runner.invoke(app, ["formats", "fp16", "--json"])
    assert result.exit_code == 0
    (row,) = json.loads(result.output)
    assert row == {"format": "float<5,10>", "bits": 16, "min": -65504.0, "max": 65504.0,
                   "min_positive": 2.0**-24, "step": None, "values": 63487}


def test_bad_format_is_one_line_without_traceback():
    result = runner.invoke(app, ["formats", "flaot<4,3>"])
    assert result.exit_code == 2
    assert "did you mean 'float'" in result.output and "Traceback" not in result.output


def test_debug_shows_the_exception():
    result = runner.invoke(app, ["--debug", "formats", "fixed<0,4>"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
