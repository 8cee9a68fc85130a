"""Notebook output: ``show`` turns section results into markdown, tables and charts."""

from __future__ import annotations

from typing import Any

import pandas as pd


def skipped_or_failed(skipped: str | None, error: str | None, failed: str) -> str | None:
    """The markdown of a section that was skipped or failed (``failed`` says what), else None."""
    if skipped:
        return f"**Skipped:** {skipped}"
    if error:
        return f"❌ {failed}: {error}"
    return None


def show(*items: Any) -> None:
    """Notebook output for section results: markdown text, then their tables and charts."""
    from IPython.display import Markdown
    from IPython.display import display as ipython_display

    def display(value: Any) -> None:
        with pd.option_context("display.max_colwidth", 300, "display.width", 200):
            ipython_display(value)

    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            display(Markdown(item))
        elif isinstance(item, pd.DataFrame):
            display(item)
        elif hasattr(item, "savefig"):  # a matplotlib figure: show it once, then let it go
            import matplotlib.pyplot as plt

            display(item)
            plt.close(item)
        elif isinstance(item, list | tuple):
            show(*item)
        elif hasattr(item, "markdown"):
            display(Markdown(item.markdown()))
            table = getattr(item, "table", None)
            tables: list[Any]
            if callable(table):
                tables = [table()]
            elif isinstance(table, pd.DataFrame):
                tables = [table]
            else:
                tables = item.tables() if hasattr(item, "tables") else []
            for frame in tables:
                if not frame.empty:
                    display(frame)
        else:
            display(item)
