"""``make demo``'s entry point, run the way make runs it once venv/ exists."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat

from local import demo

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_exits_0_and_writes_the_report(tmp_path):
    env = {**os.environ, "NCW_DEMO_OUT": str(tmp_path)}
    env.pop("AWS_ENDPOINT_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "local.demo", "--wait-timeout", "30"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "Demo OK" in run.stdout

    executed = tmp_path / "runbook-dev.ipynb"
    html = tmp_path / "runbook-dev.html"
    assert executed.is_file() and html.is_file()
    notebook = nbformat.read(executed, as_version=4)
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
    assert "<html" in html.read_text(encoding="utf-8").lower()
    # The parameters the demo injected: the notification it sent, against the local stack.
    injected = next(
        cell.source
        for cell in notebook.cells
        if "injected-parameters" in cell.get("metadata", {}).get("tags", [])
    )
    assert "dry_run = True" in injected
    assert "aws_endpoint_url = " in injected and "127.0.0.1" in injected
    deploy_id, status = re.search(r"deploy (\S+): HTTP (2\d\d)", run.stdout).groups()
    assert f'deploy_id = "{deploy_id}"' in injected
    # The report's section 3 shows the answer the demo's notification got.
    assert f"notification_status = {status}" in injected
    summary = json.loads((tmp_path / "runbook-dev.json").read_text())
    assert summary["trigger"]["status"] == int(status)

    # The deploy passes through the queue: queued by the ingest, delivered to the worker (the
    # same message), deleted once processed, and invalidated by the worker.
    queued = re.findall(r"queued message (\S+) for (\S+): reference (\S+)", run.stdout)
    assert len(queued) == 1
    message_id, _, reference = queued[0]
    assert f"netlify-{deploy_id}-" in reference
    assert re.search(r"worker \S+-worker invoked with 1 record\(s\)", run.stdout)
    assert f"record {message_id} (receive 1): deploy {deploy_id}" in run.stdout
    assert "-> 1 processed (deleted), 0 to retry" in run.stdout
    assert "the queue holds 0 message(s), the dead-letter queue 0" in run.stdout
    invalidation = re.search(r"invalidation (\S+) status", run.stdout)
    assert invalidation and invalidation.group(1) == summary["verify"]["invalidation_id"]


def _stale_report(folder: Path) -> list[Path]:
    """An earlier run's report: a valid executed notebook, its HTML and its summary."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("an earlier run")])
    paths = [folder / f"runbook-dev.{suffix}" for suffix in ("ipynb", "html", "json")]
    nbformat.write(notebook, paths[0])
    paths[1].write_text("<html>an earlier run</html>", encoding="utf-8")
    paths[2].write_text("{}", encoding="utf-8")
    return paths


def test_a_run_that_fails_at_once_leaves_no_earlier_report_behind(tmp_path, monkeypatch, capsys):
    stale = _stale_report(tmp_path)

    def cannot_start(stack):
        raise RuntimeError("no local stack today")

    monkeypatch.setattr(demo.LocalStack, "start", cannot_start)
    assert demo.main(["--out", str(tmp_path)]) == 1
    assert [path for path in stale if path.exists()] == []
    printed = capsys.readouterr().out
    assert all(str(path) not in printed for path in stale)


def test_a_runbook_that_writes_nothing_gets_no_html_from_an_earlier_run(tmp_path, monkeypatch):
    import papermill

    stale = _stale_report(tmp_path)

    def fails_before_writing(*args, **kwargs):
        raise RuntimeError("kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", fails_before_writing)
    local = SimpleNamespace(
        stack="dev",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        distribution_ids=("E1",),
        environment=dict,
    )
    report, error = demo.run_runbook(local, "dep-1", tmp_path, wait_timeout_s=1)
    assert isinstance(error, RuntimeError)
    assert [path for path in stale if path.exists()] == []
    assert report.read_summary() is None
