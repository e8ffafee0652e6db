"""Markdown and self-contained HTML (plots base64-embedded) from the same sections."""

from __future__ import annotations

import base64
import html
from collections.abc import Collection

from harness.report.sections import Section, Table

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px "
    "solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}td:first-child"
    "{text-align:left}img{max-width:100%;margin:.5em 0}.warn{background:#fff3cd;padding:.5em;"
    "border-left:4px solid #e0a800}"
)


def _md_table(t: Table) -> str:
    if not t.rows:
        return "_(none)_"
    lines = ["| " + " | ".join(t.headers) + " |", "|" + "---|" * len(t.headers)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def render_markdown(
    title: str,
    sections: list[Section],
    plot_dir: str = "plots",
    available: Collection[str] | None = None,
) -> str:
    """Markdown; images only for the plots in ``available`` (default: all the sections name)."""
    out = [f"# {title}", ""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        out += [p + "\n" for p in sec.text]
        out += [_md_table(t) + "\n" for t in sec.tables]
        shown = [n for n in sec.plots if available is None or n in available]
        out += [f"![{name}]({plot_dir}/{name}.png)\n" for name in shown]
    return "\n".join(out)


def _html_table(t: Table) -> str:
    if not t.rows:
        return "<p><em>(none)</em></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_text(p: str) -> str:
    text = html.escape(p)
    if text.startswith("**") and text.endswith("**"):
        return f'<p class="warn"><strong>{text[2:-2]}</strong></p>'
    parts = text.split("**")
    text = "".join(f"<strong>{x}</strong>" if i % 2 else x for i, x in enumerate(parts))
    parts = text.split("`")
    return (
        "<p>" + "".join(f"<code>{x}</code>" if i % 2 else x for i, x in enumerate(parts)) + "</p>"
    )


def render_html(title: str, sections: list[Section], plots: dict[str, bytes]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for sec in sections:
        body.append(f"<h2>{html.escape(sec.title)}</h2>")
        body += [_html_text(p) for p in sec.text]
        body += [_html_table(t) for t in sec.tables]
        for name in sec.plots:
            if name in plots:
                data = base64.b64encode(plots[name]).decode("ascii")
                body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
