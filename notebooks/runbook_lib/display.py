"""Notebook output: ``show`` turns section results into markdown, tables and charts.

Written for the report people read (``runbook_lib.report`` exports it without code): tables
without an index column and with left-aligned text, status words in colour (never emoji), one
line of progress for a wait, and the verdict at the top of the notebook, filled in by the recap.
"""

from __future__ import annotations

import html
import io
import math
import re
import sys
from datetime import datetime
from typing import Any

import pandas as pd

from runbook_lib.verdict import COLOURS, Verdict, word_html

VERDICT_DISPLAY_ID = "ncw-verdict"
# Words shown in colour wherever they stand alone: the verdicts and CloudWatch's alarm states.
_WORDS = {**COLOURS, "ALARM": COLOURS["FAIL"], "INSUFFICIENT_DATA": COLOURS["WARN"]}
_WORD = re.compile(
    r"(?<![\w/`-])(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")(?![\w/`-])"
)
_CELL_STYLE = "text-align:left;vertical-align:top;padding:3px 10px"


def coloured_words(text: str) -> str:
    """``text`` (markdown or escaped HTML) with PASS/WARN/FAIL/SKIPPED/ALARM coloured."""

    def paint(match: re.Match[str]) -> str:
        word = match.group(1)
        return f'<span style="color:{_WORDS[word]};font-weight:bold">{word}</span>'

    return _WORD.sub(paint, text)


_CODE = re.compile(r"`([^`]+)`")


def html_text(text: str) -> str:
    """Plain text with markdown's `code` spans, as HTML: escaped, code in <code>, words coloured."""
    return coloured_words(_CODE.sub(r"<code>\1</code>", html.escape(text)))


def skipped_or_failed(skipped: str | None, error: str | None, failed: str) -> str | None:
    """The markdown of a section that was skipped or failed (``failed`` says what), else None."""
    if skipped:
        return f"**SKIPPED:** {skipped}"
    if error:
        return f"**FAIL:** {failed}: {error}"
    return None


def cell_text(value: Any) -> str:
    """A table cell as text: blanks for missing values, UTC times to the second."""
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if stamp.tzinfo else "")
    return str(value)


def table_html(frame: pd.DataFrame) -> str:
    """The frame as an HTML table: no index column, text left-aligned (inline styles, which
    win over the notebook theme's right-aligned cells), status words in colour."""
    head = "".join(
        f'<th style="{_CELL_STYLE};border-bottom:1px solid #999">{html.escape(str(column))}</th>'
        for column in frame.columns
    )
    rows = []
    for record in frame.itertuples(index=False, name=None):
        cells = "".join(
            f'<td style="{_CELL_STYLE}">{html_text(cell_text(value))}</td>' for value in record
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        '<table class="ncw-table" style="border-collapse:collapse;margin:4px 0 12px 0">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def table_text(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no rows)"
    shown = frame.map(cell_text) if hasattr(frame, "map") else frame.astype(str)
    return shown.to_string(index=False)


def _display(bundle: dict[str, str], **kwargs: Any) -> Any:
    from IPython.display import display

    return display(bundle, raw=True, **kwargs)


def show(*items: Any) -> None:
    """Notebook output for section results: markdown text, then their tables and charts."""
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            _display({"text/markdown": coloured_words(item), "text/plain": item})
        elif isinstance(item, pd.DataFrame):
            if not item.empty:
                _display({"text/html": table_html(item), "text/plain": table_text(item)})
        elif hasattr(item, "savefig"):  # a matplotlib figure: show it once, then let it go
            import matplotlib.pyplot as plt
            from IPython.display import display

            display(item)
            plt.close(item)
        elif isinstance(item, list | tuple):
            show(*item)
        elif hasattr(item, "markdown"):
            show(item.markdown())
            table = getattr(item, "table", None)
            if callable(table):
                show(table())
            elif isinstance(table, pd.DataFrame):
                show(table)
            elif hasattr(item, "tables"):
                show(*item.tables())
        else:
            from IPython.display import display

            display(item)


def verdict_bundle(verdict: Verdict | None, where: str = "", when: str = "") -> dict[str, str]:
    """The verdict box: the word in colour and its reasons (``None``: not reached yet)."""
    if verdict is None:
        text = (
            "Verdict: not reached. The run stopped before the recap; the error is at the end of "
            "the report."
        )
        return {"text/html": f"<p><b>{html.escape(text)}</b></p>", "text/plain": text}
    colour = COLOURS.get(verdict.verdict, COLOURS["SKIPPED"])
    where = ", ".join(part for part in (where, when) if part)
    items = "".join(f"<li>{html_text(reason)}</li>" for reason in verdict.reasons)
    box = (
        f'<div style="border:2px solid {colour};padding:6px 14px;margin:6px 0">'
        f'<div style="font-size:1.5em">Verdict: {word_html(verdict.verdict)}'
        f"{f' <small>({html.escape(where)})</small>' if where else ''}</div>"
        f"<ul>{items}</ul></div>"
    )
    plain = "\n".join([f"Verdict: {verdict.verdict}", *(f"- {r}" for r in verdict.reasons)])
    return {"text/html": box, "text/plain": plain}


def show_verdict_placeholder() -> None:
    """The box at the top of the notebook; ``show_verdict`` fills it in at the end."""
    _display(verdict_bundle(None), display_id=VERDICT_DISPLAY_ID)


def show_verdict(verdict: Verdict, where: str = "", when: str = "") -> None:
    """The verdict, here and in the box at the top (an executed notebook keeps both)."""
    from IPython.display import update_display

    bundle = verdict_bundle(verdict, where, when)
    update_display(bundle, raw=True, display_id=VERDICT_DISPLAY_ID)
    _display(bundle)


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class ProgressLine(io.TextIOBase):
    """A file for tqdm that keeps one line: in a notebook, one output updated in place (the
    executed notebook, and so the report, keeps only the last state: one line, not one per
    refresh); elsewhere, stderr."""

    def __init__(self) -> None:
        super().__init__()
        self._handle: Any = None
        self._last = ""
        if in_notebook():
            self._handle = _display({"text/plain": ""}, display_id=True)

    def write(self, text: str) -> int:
        if self._handle is None:
            sys.stderr.write(text)
            return len(text)
        line = text.replace("\n", "\r").split("\r")
        latest = next((part for part in reversed(line) if part.strip()), "")
        if latest and latest != self._last:
            self._last = latest
            self._handle.update({"text/plain": latest}, raw=True)
        return len(text)

    def flush(self) -> None:
        if self._handle is None:
            sys.stderr.flush()
