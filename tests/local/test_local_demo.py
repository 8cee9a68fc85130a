"""``make demo``'s entry point, run the way make runs it once venv/ exists."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

from infra.function import RUNTIME
from local import demo

ROOT = Path(__file__).resolve().parents[2]
STAMP = r"\d{8}T\d{6}Z"


def _run_demo(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NCW_DEMO_OUT": str(out)}
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(  # noqa: S603 (this interpreter, arguments from this module)
        [sys.executable, "-m", "local.demo", "--wait-timeout", "30", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def _reports(out: Path) -> dict[str, dict[str, Path]]:
    """``{"runbook-dev": {".html": path, ...}, "fleet": {...}}`` of one demo run's files."""
    found: dict[str, dict[str, Path]] = {}
    stamps = set()
    for path in out.iterdir():
        match = re.fullmatch(rf"(runbook-.+|fleet)-({STAMP})(\.html|\.ipynb|\.json)", path.name)
        assert match, f"unexpected file {path.name}"
        name, stamp, suffix = match.groups()
        stamps.add(stamp)
        found.setdefault(name, {})[suffix] = path
    assert len(stamps) == 1, stamps  # one UTC stamp for every report of the run
    return found


def _injected(notebook_path: Path) -> str:
    notebook = nbformat.read(notebook_path, as_version=4)
    return next(
        cell.source
        for cell in notebook.cells
        if "injected-parameters" in cell.get("metadata", {}).get("tags", [])
    )


def test_the_demo_runs_every_stack_and_writes_every_report(tmp_path):
    run = _run_demo(tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "Demo OK" in run.stdout

    # 1. The missed notification: found and queued by each stack's reconciler, invalidated.
    missed = re.findall(r"(\S+): findings: publish of deploy (\S+) missed, 1 message", run.stdout)
    assert sorted(stack for stack, _ in missed) == ["dev", "dev-url"]
    (missed_deploy,) = {deploy for _, deploy in missed}
    for stack in ("dev", "dev-url"):
        assert re.search(
            rf"{stack} E2EXAMPLE1ABCD: invalidation \S+ status COMPLETED reference "
            rf"netlify-{missed_deploy}-",
            run.stdout,
        )
    # 2. Run again: the publish is covered, nothing queued twice; dev's disabled hook reported.
    assert re.search(
        rf"dev: findings: publish of deploy {missed_deploy} covered, 0 message\(s\) queued, "
        r"hooks: deploy_created ok, deploy_restored disabled",
        run.stdout,
    )
    assert re.search(rf"dev-url: ok: publish of deploy {missed_deploy} covered", run.stdout)
    # 3. A deploy Netlify notified: through the ALB stand-in and the function URL stand-in.
    delivered = re.findall(r"-> (\S+) \((alb|functionUrl)\): deploy_created HTTP (\d+)", run.stdout)
    assert sorted(delivered) == [("dev", "alb", "202"), ("dev-url", "functionUrl", "202")]
    deploy_id = re.search(r"deploy (\S+) published; notifying its hooks", run.stdout).group(1)
    assert (
        len(
            re.findall(
                rf"queued message \S+ for E2EXAMPLE1ABCD: reference "
                rf"netlify-{deploy_id}-",
                run.stdout,
            )
        )
        == 2
    )
    assert "the queue holds 0 message(s), the dead-letter queue 0" in run.stdout
    # Nothing secret is printed (webhook URLs carry the token, hooks the JWS secret).
    assert "token=" not in output and "signature_secret" not in output

    # 4. Every report: each stack's runbook and the fleet view, with the same stamp.
    reports = _reports(tmp_path)
    assert sorted(reports) == ["fleet", "runbook-dev", "runbook-dev-url"]
    for files in reports.values():
        assert sorted(files) == [".html", ".ipynb", ".json"]
        assert "<html" in files[".html"].read_text(encoding="utf-8").lower()
        assert str(files[".html"]) in run.stdout
    for stack in ("dev", "dev-url"):
        injected = _injected(reports[f"runbook-{stack}"][".ipynb"])
        assert f'stack = "{stack}"' in injected
        assert f'deploy_id = "{deploy_id}"' in injected
        assert "notification_status = 202" in injected
    verdicts = {
        name: json.loads(files[".json"].read_text())["verdict"]["verdict"]
        for name, files in reports.items()
    }
    # dev's deploy_restored hook is still disabled: a warning, not a failure.
    assert verdicts == {"runbook-dev": "WARN", "runbook-dev-url": "PASS", "fleet": "WARN"}
    fleet = json.loads(reports["fleet"][".json"].read_text())
    assert [row["stack"] for row in fleet["stacks"]] == ["dev", "dev-url"]


def test_the_demo_runs_on_the_function_url_stack_alone(tmp_path):
    run = _run_demo(tmp_path, "--stack", "dev-url")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "stack dev-url: function URL stand-in http://127.0.0.1:" in run.stdout
    assert "stack dev:" not in run.stdout
    assert re.search(r"-> dev-url \(functionUrl\): deploy_created HTTP 202", run.stdout)
    assert sorted(_reports(tmp_path)) == ["fleet", "runbook-dev-url"]


def test_a_fail_verdict_makes_the_demo_exit_non_zero(tmp_path, monkeypatch, capsys):
    """The ingest runs another runtime than the program deploys: the runbook's verdict is FAIL,
    its last cell raises, papermill fails, and so does the demo (its report is still written)."""
    real_write_reports = demo.write_reports

    def drifted_then_reported(fleet, *args, **kwargs):
        local = fleet["dev-url"]
        local.client("lambda").update_function_configuration(
            FunctionName=local.function_name, Runtime="python3.9"
        )
        assert RUNTIME != "python3.9"
        return real_write_reports(fleet, *args, **kwargs)

    monkeypatch.setattr(demo, "write_reports", drifted_then_reported)
    assert demo.main(["--stack", "dev-url", "--out", str(tmp_path), "--wait-timeout", "5"]) == 1
    printed = capsys.readouterr().out
    assert "Demo FAILED" in printed
    assert "the runbook of dev-url did not pass (verdict FAIL)" in printed
    reports = _reports(tmp_path)
    summary = json.loads(reports["runbook-dev-url"][".json"].read_text())
    assert summary["verdict"]["verdict"] == "FAIL"
    assert reports["runbook-dev-url"][".html"].is_file()


def test_the_demo_flow_alone_writes_no_report(tmp_path):
    run = _run_demo(tmp_path, "--stack", "dev", "--no-reports")
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert "Executing the runbooks" not in run.stdout
    assert list(tmp_path.iterdir()) == []
