"""The self-contained HTML report that Compare offers for download: headings, figures, tables and text."""
from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

_REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; }
table.report-table { border-collapse: collapse; font-size: .9rem; }
table.report-table th, table.report-table td { border: 1px solid #ddd; padding: .3rem .6rem;
       text-align: right; }
table.report-table th { background: #f5f5f5; }
"""


def report_html(
    title: str,
    sections: Sequence[tuple[str, go.Figure | pd.DataFrame | str]],
) -> str:
    """A self-contained HTML report: headings plus figures, tables and text.

    plotly.js is embedded inline once, with the first figure, so the file opens offline
    (no CDN) without carrying several copies of the ~5 MB library. Text and headings
    are HTML-escaped; tables go through pandas' escaping ``to_html``.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_REPORT_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    plotlyjs_embedded = False
    for heading, content in sections:
        parts.append(f"<section><h2>{html.escape(heading)}</h2>")
        if isinstance(content, go.Figure):
            parts.append(
                content.to_html(
                    full_html=False,
                    include_plotlyjs=not plotlyjs_embedded,
                    # A "100%" height (the default) collapses inside an auto-height
                    # section; figures that set their own height keep it.
                    default_height=500,
                    config={"displaylogo": False},
                )
            )
            plotlyjs_embedded = True
        elif isinstance(content, pd.DataFrame):
            # A RangeIndex carries no information; a named index (e.g. run label) does.
            show_index = not isinstance(content.index, pd.RangeIndex)
            # A value that cannot exist (one seed has no interval) is a dash, as on the page, never "NaN".
            parts.append(content.to_html(index=show_index, border=0, classes="report-table", escape=True,
                                         na_rep="—"))
        elif isinstance(content, str):
            for paragraph in content.split("\n\n"):
                if paragraph.strip():
                    parts.append(f"<p>{html.escape(paragraph).replace(chr(10), '<br>')}</p>")
        else:
            raise TypeError(
                "section content must be a plotly Figure, a pandas DataFrame or a str. "
                f"Received: {type(content).__name__} in section {heading!r}"
            )
        parts.append("</section>")
    parts.extend(["</body>", "</html>"])
    return "\n".join(parts)
