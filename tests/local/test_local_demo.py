"""``make demo``'s entry point, run the way make runs it once venv/ exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

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
    deploy_id = re.search(r"deploy (\S+): HTTP 2\d\d", run.stdout).group(1)
    assert f'deploy_id = "{deploy_id}"' in injected
