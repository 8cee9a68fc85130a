"""The report people read: execute a notebook with papermill, export it to HTML without code.

``write_report(parameters)`` runs ``notebooks/runbook.ipynb`` for one stack and writes, under
``out/`` (or ``out_dir``), three files with the same name: ``runbook-<stack>-<UTC stamp>``
``.ipynb`` (executed), ``.html`` (the report) and ``.json`` (the run's summary, no secrets).
``write_fleet_report`` does the same for ``notebooks/fleet.ipynb`` (``fleet-<stamp>``).

The HTML has no code cells (``TemplateExporter.exclude_input``), is titled with the stack and
the time, and loads nothing from the network: the ``ncw-report`` template (next to this module)
extends nbconvert's ``lab`` template without its require.js, MathJax and mermaid scripts, and
the charts are embedded PNGs. A FAIL verdict makes the notebook's last cell raise, so papermill
(and this function's ``Report.ok``) report the run as failed; the HTML is written anyway, and
that deliberate error is left out of it (the verdict at the top says why).

Command line: ``python -m runbook_lib.report [--fleet] [--out DIR] [-p NAME VALUE ...]`` exits 1
unless the verdict is PASS or WARN.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from infra.runbook_env import RUNBOOK_ENV
from infra.stack_files import PROJECT_DIR

NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
RUNBOOK = NOTEBOOKS_DIR / "runbook.ipynb"
FLEET = NOTEBOOKS_DIR / "fleet.ipynb"
OUT_DIR = PROJECT_DIR / "out"
TEMPLATES = Path(__file__).resolve().parent / "report_template"
TEMPLATE_NAME = "ncw-report"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
KERNEL = "python3"
# The notebooks tag their last cell so: it raises on a FAIL verdict (papermill exits non-zero),
# which the report does not need to show as a traceback.
GATE_TAG = "verdict-gate"
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"  # papermill's marker cells around an error


@dataclass
class Report:
    notebook: Path
    html: Path
    summary: Path
    verdict: str | None = None  # PASS, WARN, FAIL; None: the run stopped before its recap
    reasons: list[str] = field(default_factory=list)
    error: BaseException | None = None  # what papermill raised (a FAIL verdict raises too)

    @property
    def ok(self) -> bool:
        """PASS or WARN, and nothing but the FAIL gate raised (i.e. nothing raised)."""
        return self.error is None and self.verdict in ("PASS", "WARN")

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def read_summary(self) -> dict[str, Any] | None:
        if not self.summary.is_file():
            return None
        return json.loads(self.summary.read_text(encoding="utf-8"))


def report_paths(out_dir: Path, name: str, now: datetime | None = None) -> Report:
    """``<out_dir>/<name>-<UTC stamp>.{ipynb,html,json}``, not overwriting an earlier run's."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime(STAMP_FORMAT)
    base = f"{name}-{stamp}"
    for attempt in range(2, 100):
        if not any((out_dir / f"{base}{suffix}").exists() for suffix in (".html", ".ipynb")):
            break
        base = f"{name}-{stamp}-{attempt}"  # two runs in one second
    return Report(
        notebook=out_dir / f"{base}.ipynb",
        html=out_dir / f"{base}.html",
        summary=out_dir / f"{base}.json",
    )


def _gate_only_error(notebook: Any) -> bool:
    """True when the only error in the executed notebook is the FAIL gate's."""
    failed = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code"
        and any(output.get("output_type") == "error" for output in cell.get("outputs", []))
    ]
    return bool(failed) and all(GATE_TAG in cell.metadata.get("tags", []) for cell in failed)


def export_html(notebook_path: Path, html_path: Path, title: str) -> Path:
    """The executed notebook as the report: no code, titled, nothing loaded from a CDN."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.metadata["title"] = title
    remove_outputs = {GATE_TAG}
    remove_cells: set[str] = set()
    if _gate_only_error(notebook):
        remove_cells.add(PAPERMILL_ERROR_TAG)  # "An Exception was encountered": the verdict says it
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(
            remove_all_outputs_tags=remove_outputs, remove_cell_tags=remove_cells, enabled=True
        ),
        enabled=True,
    )
    body, _resources = exporter.from_notebook_node(
        notebook, resources={"metadata": {"name": title}}
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(without_css_comments(body), encoding="utf-8")
    return html_path


_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.DOTALL | re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


def without_css_comments(page: str) -> str:
    """The page with the comments of its inlined stylesheets removed: they only credit their
    sources (URLs), so every address left in the report is one the report shows."""
    return _STYLE.sub(
        lambda match: match.group(1) + _CSS_COMMENT.sub("", match.group(2)) + match.group(3), page
    )


@contextmanager
def _kernel_environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    """The kernel inherits the environment of the process that starts it."""
    if environ is None:
        yield
        return
    with mock.patch.dict(os.environ, {key: str(value) for key, value in environ.items()}):
        yield


def _execute(
    source: Path,
    report: Report,
    parameters: Mapping[str, Any],
    *,
    title: str,
    environ: Mapping[str, str] | None,
    kernel_name: str,
    execution_timeout: float,
) -> Report:
    import papermill

    report.notebook.parent.mkdir(parents=True, exist_ok=True)
    with _kernel_environment(environ):
        try:
            papermill.execute_notebook(
                str(source),
                str(report.notebook),
                parameters={**parameters, "summary_path": str(report.summary)},
                kernel_name=kernel_name,
                cwd=str(source.parent),
                progress_bar=False,
                start_timeout=120,
                execution_timeout=int(execution_timeout),
            )
        except Exception as error:  # papermill saved the notebook up to the failure
            report.error = error
    if report.notebook.exists():
        export_html(report.notebook, report.html, title)
    summary = report.read_summary()
    if summary is not None:
        verdict = summary.get("verdict") or {}
        report.verdict = verdict.get("verdict")
        report.reasons = list(verdict.get("reasons") or [])
    return report


def write_report(
    parameters: Mapping[str, Any] | None = None,
    *,
    out_dir: Path = OUT_DIR,
    environ: Mapping[str, str] | None = None,
    kernel_name: str = KERNEL,
    execution_timeout: float = 600,
    now: datetime | None = None,
    notebook: Path = RUNBOOK,
) -> Report:
    """Execute the site runbook with ``parameters`` and write its report (see the module).

    ``environ``: variables set for the kernel on top of this process's (the local stack's
    ``environment()``). Never raises for the run's own failures: they are in the Report.
    """
    parameters = dict(parameters or {})
    env = {**os.environ, **(environ or {})}
    stack = str(parameters.get("stack") or env.get(RUNBOOK_ENV["stack"]) or "dev")
    now = now or datetime.now(UTC)
    report = report_paths(Path(out_dir), f"runbook-{stack}", now)
    title = f"Runbook: stack {stack}, {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return _execute(
        notebook,
        report,
        parameters,
        title=title,
        environ=environ,
        kernel_name=kernel_name,
        execution_timeout=execution_timeout,
    )


def write_fleet_report(
    parameters: Mapping[str, Any] | None = None,
    *,
    out_dir: Path = OUT_DIR,
    environ: Mapping[str, str] | None = None,
    kernel_name: str = KERNEL,
    execution_timeout: float = 600,
    now: datetime | None = None,
    notebook: Path = FLEET,
) -> Report:
    """Execute the fleet view and write ``fleet-<stamp>.{html,ipynb,json}``."""
    now = now or datetime.now(UTC)
    report = report_paths(Path(out_dir), "fleet", now)
    title = f"Fleet: every site stack, {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return _execute(
        notebook,
        report,
        dict(parameters or {}),
        title=title,
        environ=environ,
        kernel_name=kernel_name,
        execution_timeout=execution_timeout,
    )


def parameter_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value as papermill's command line reads it."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runbook_lib.report",
        description="Execute the runbook (or the fleet view) and write its HTML report.",
    )
    parser.add_argument("--fleet", action="store_true", help="the fleet view, not one stack")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the report files")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter (repeatable), e.g. -p stack prod",
    )
    args = parser.parse_args(argv)
    parameters = {name: parameter_value(value) for name, value in args.parameter}
    write = write_fleet_report if args.fleet else write_report
    report = write(parameters, out_dir=args.out)
    print(f"verdict {report.verdict or 'not reached'}: {report.html}")
    for reason in report.reasons:
        print(f"  - {reason}")
    if report.error is not None and report.verdict != "FAIL":
        print(f"  the run failed: {type(report.error).__name__}: {report.error}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
