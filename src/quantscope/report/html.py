"""The report page: one self-contained HTML file (figures embedded as PNG data), the figures as
PNG and SVG files beside it, and the study's points as CSV and JSON."""

from __future__ import annotations

import base64
import html
import io
import re
from datetime import datetime, timezone
from pathlib import Path

from ..files import write_atomic
from ..store import STORE_FILE, Store
from .format import Table
from .glossary import explain
from .plots import figures
from .results import StudyResults, load_results
from .tables import report_tables

__all__ = ["render", "write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1180px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; } th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.8em 1em 0.8em 0; vertical-align: top; max-width: 560px; }
figure.wide { display: block; max-width: 100%; }
figure img { width: 100%; border: 1px solid #eee; } figcaption { font-size: 0.8em; color: #555; }
.caption { font-size: 0.85em; color: #555; max-width: 900px; } .meta { color: #777; font-size: 0.8em; }
dl.glossary { font-size: 0.85em; max-width: 900px; } dl.glossary dt { font-weight: 600; margin-top: 0.5em; } dl.glossary dd { margin-left: 1.5em; }
"""


_NUMBER = re.compile(r"^[+\-−]?(\d[\d,]*\.?\d*(e[+\-]?\d+)?|–)$")


def _cell(text: str) -> str:
    """A table cell; numbers (and the dash for "none") align right."""
    cls = ' class="num"' if _NUMBER.match(text) else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def _th(column: str) -> str:
    meaning = explain(column)
    return f'<th title="{html.escape(meaning)}">{html.escape(column)}</th>' if meaning else f"<th>{html.escape(column)}</th>"


def _glossary_html(tables: list[Table]) -> str:
    """Every column of the report's tables, explained (the same text as the headers' tooltips)."""
    columns = list(dict.fromkeys(c for t in tables for c in t.columns if c))
    items = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(explain(c) or 'no glossary entry')}</dd>" for c in columns)
    return f"<h2>Glossary</h2><dl class='glossary'>{items}</dl>"


def _table_html(t: Table) -> str:
    head = "".join(_th(c) for c in t.columns) if any(t.columns) else ""
    body = "".join("<tr>" + "".join(_cell(str(c)) for c in row) + "</tr>" for row in t.rows)
    caption = f'<p class="caption">{html.escape(t.caption)}</p>' if t.caption else ""
    return f"<h2>{html.escape(t.title)}</h2>{caption}<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def render(results: StudyResults, out: Path, compare: bool = True) -> str:
    """Write the figures (PNG, SVG) into `out` and return the page's HTML."""
    parts_fig = []
    for spec, fig in figures(results):
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png")
        fig.savefig(svg, format="svg")
        write_atomic(out / f"{spec.stem}.png", png.getvalue())
        write_atomic(out / f"{spec.stem}.svg", svg.getvalue())
        data = base64.b64encode(png.getvalue()).decode()
        cls = ' class="wide"' if spec.wide else ""
        parts_fig.append(f'<figure{cls}><img alt="{spec.stem}" src="data:image/png;base64,{data}">'
                         f'<figcaption>{html.escape(spec.caption)} (<a href="{spec.stem}.png">PNG</a>, <a href="{spec.stem}.svg">SVG</a>)'
                         '</figcaption></figure>')
    title = results.config.get("report", {}).get("title") or f"quantscope study: {results.name}"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='meta'>generated {stamp} from {html.escape(str(results.folder))}; "
             "points: <a href='points.csv'>CSV</a>, <a href='points.json'>JSON</a></p>"]
    tabs = report_tables(results, compare)
    parts.append(_table_html(tabs[0]))
    parts.append("<h2>Figures</h2>" + "".join(parts_fig))
    parts += [_table_html(t) for t in tabs[1:]]
    parts.append(_glossary_html(tabs))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a study folder (default into FOLDER/report); returns index.html's path."""
    results = load_results(folder)
    out = Path(out) if out is not None else results.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    page = render(results, out, compare=results.config.get("report", {}).get("compare", True))
    with Store(results.folder / STORE_FILE, read_only=True) as store:
        store.export(out / "points.csv", results.name)
        store.export(out / "points.json", results.name)
    path = out / "index.html"
    write_atomic(path, page)
    return path
