"""The runbook notebook: file hygiene, a run with its defaults, and runs against the local stack."""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from function.invalidation_message import new_message
from function.webhook_settings import caller_reference
from local.stack import LocalStack
from runbook_lib.config import ENV, NO_PULUMI
from runbook_lib.notify import netlify_deploy_payload, send_deploy_notification
from runbook_lib.pipeline import ERROR_CODE_ATTRIBUTE

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "runbook.ipynb"
PAIR = NOTEBOOKS / "runbook.py"
PARAMETERS = {
    "stack",
    "region",
    "aws_endpoint_url",
    "webhook_url",
    "distribution_id",
    "deploy_id",
    "notification_status",
    "wait_timeout_s",
    "poll_interval_s",
    "dry_run",
    "redrive_dead_letters",
    "manual_paths",
    "history_limit",
    "summary_path",
}
# Variables that would point the kernel at a stack; cleared so each run sees only its own.
RUNBOOK_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "NETLIFY_AUTH_TOKEN",
    "NETLIFY_API_URL",
    *ENV.values(),
)


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


# ---------------------------------------------------------------------------- hygiene


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in _code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_notebook_declares_the_python3_kernel_and_its_jupytext_pair():
    metadata = nbformat.read(NOTEBOOK, as_version=4).metadata
    assert metadata.kernelspec == {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    assert metadata.jupytext["formats"] == "ipynb,py:percent"


def test_first_code_cell_holds_the_parameters_with_safe_defaults():
    first = _code_cells(nbformat.read(NOTEBOOK, as_version=4))[0]
    assert "parameters" in first.metadata.get("tags", [])
    values = {}
    for node in ast.parse(first.source).body:
        assert isinstance(node, ast.Assign), "only assignments in the parameters cell"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert set(values) == PARAMETERS
    assert values["dry_run"] is True
    assert values["redrive_dead_letters"] is False  # nothing moves unless asked
    for name in (
        "webhook_url",
        "aws_endpoint_url",
        "deploy_id",
        "notification_status",
        "stack",
        "summary_path",
    ):
        assert values[name] is None  # no secrets, no endpoints baked into the file


def test_ipynb_and_py_percent_pair_are_in_sync():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    paired = jupytext.read(PAIR)
    assert [(c.cell_type, c.source.strip()) for c in notebook.cells] == [
        (c.cell_type, c.source.strip()) for c in paired.cells
    ]
    assert [c.metadata.get("tags") for c in _code_cells(notebook)] == [
        c.metadata.get("tags") for c in _code_cells(paired)
    ]


def test_every_section_has_a_heading_and_a_short_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    headings = [c.source for c in notebook.cells if c.cell_type == "markdown"]
    for number in range(1, 10):
        assert any(text.startswith(f"## {number}. ") for text in headings), number
    for cell in _code_cells(notebook):
        assert len(cell.source.splitlines()) <= 15, cell.source[:60]


# ---------------------------------------------------------------------------- executed


def _execute(tmp_path: Path, name: str, **parameters) -> tuple[dict, nbformat.NotebookNode]:
    import papermill

    summary = tmp_path / f"{name}.json"
    output = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(output),
        parameters={"summary_path": str(summary), **parameters},
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        start_timeout=60,
        execution_timeout=120,
    )
    executed = nbformat.read(output, as_version=4)
    for cell in _code_cells(executed):
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:60]
    return json.loads(summary.read_text()), executed


def _all_output_text(notebook) -> str:
    return json.dumps([cell.get("outputs", []) for cell in notebook.cells])


@pytest.fixture
def clean_environment(monkeypatch):
    """The kernel's environment: no stack variables, the pulumi CLI opted out of, and a PATH of
    the venv's bin folder only (the kernel starts with its python), so that a pulumi CLI logged
    in on this machine cannot turn a run into one against the real stack."""
    for name in RUNBOOK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.setenv(NO_PULUMI, "1")
    return monkeypatch


def test_runs_top_to_bottom_with_its_defaults_without_aws_or_secrets(tmp_path, clean_environment):
    assert shutil.which("pulumi") is None
    summary, executed = _execute(tmp_path, "defaults")
    assert NO_PULUMI in summary["pulumi_note"]
    assert summary["live"] is False
    assert summary["trigger"]["sent"] is False
    assert summary["verify"]["skipped"]
    assert summary["history"]["rows"] == 0
    assert summary["manual"]["dry_run"] is True and not summary["manual"]["created"]
    assert summary["netlify"]["action"] == "skipped"
    assert summary["pipeline"]["verdict"] == "SKIPPED" and summary["pipeline"]["queue"] is None
    assert summary["pipeline"]["redrive"]["skipped"]
    assert summary["worker_errors"]["message"].startswith("**Skipped:**")
    assert "no stack to talk to" in _all_output_text(executed)


@pytest.fixture(scope="module")
def local_stack():
    with LocalStack.start(stack="dev") as local:
        yield local


@pytest.fixture
def local_environment(local_stack, clean_environment):
    for name, value in local_stack.environment().items():
        clean_environment.setenv(name, value)
    return local_stack


def _dead_letter(local: LocalStack, deploy_id: str, error_code: str) -> str:
    """A message in the local dead-letter queue, as the worker leaves one; returns its body."""
    paths = list(local.settings.invalidation_paths)
    body = new_message(
        deploy_id=deploy_id,
        site_id=local.settings.netlify_site_id,
        event="deploy_created",
        context="production",
        distribution_id=local.distribution_ids[0],
        paths=paths,
        caller_reference=caller_reference(deploy_id, paths),
    ).to_body()
    local.client("sqs").send_message(
        QueueUrl=local.dead_letter_queue_url,
        MessageBody=body,
        MessageAttributes={ERROR_CODE_ATTRIBUTE: {"DataType": "String", "StringValue": error_code}},
    )
    return body


def test_runbook_against_the_local_stack_sends_verifies_and_lists(tmp_path, local_environment):
    local = local_environment
    token = local.rule.token.reveal()
    token_less = local.webhook_url.split("?")[0]  # the token comes from NCW_WEBHOOK_URL
    _dead_letter(local, "deadbeef" * 3, "ServiceUnavailable")
    summary, executed = _execute(
        tmp_path,
        "local",
        webhook_url=token_less,
        wait_timeout_s=30,
        poll_interval_s=1,
        dry_run=False,
        redrive_dead_letters=True,
    )
    pipeline = summary["pipeline"]
    assert pipeline["missing"] == [] and pipeline["queue"]["url"] == local.queue_url
    assert pipeline["queue"]["error"] is None and pipeline["queue"]["visible"] is not None
    assert "no data" in pipeline["queue"]["oldest_note"]  # moto publishes no SQS metrics
    rows = pipeline["dead_letters"]["rows"]
    seeded = [row for row in rows if row["deploy"] == "deadbeef" * 3]
    assert [row["error"] for row in seeded] == ["ServiceUnavailable"]
    assert pipeline["alarms"]["error"] is None and pipeline["alarms"]["skipped"] is None
    assert pipeline["redrive"]["enabled"] and pipeline["redrive"]["moved"] == len(rows)
    assert pipeline["redrive"]["send_failed"] == 0
    assert token not in json.dumps(executed)  # neither parameters, metadata nor outputs
    assert summary["live"] is True
    trigger = summary["trigger"]
    assert trigger["sent"] and trigger["accepted"] and trigger["status"] == 202
    verify = summary["verify"]
    assert verify["found"] and verify["completed"] and not verify["timed_out"]
    assert verify["matched_by"] == "reference"
    assert verify["deploy_id"] == trigger["deploy_id"]
    queued = trigger["body"]["invalidations"]  # 202 "queued": one message per distribution
    assert verify["caller_reference"] in {item["caller_reference"] for item in queued}
    assert verify["distribution_id"] in {item["distribution_id"] for item in queued}
    assert summary["history"]["contains_verified"]
    assert all(not h["flags"] and not h["error"] for h in summary["health"])
    assert summary["manual"]["created"] and summary["manual"]["invalidation_id"]
    assert summary["netlify"]["action"] == "dry-run"
    shown = _all_output_text(executed)
    assert token not in shown and local.jws_secret not in shown  # secrets are only masked


def test_runbook_reports_a_deploy_the_caller_already_notified(tmp_path, local_environment):
    local = local_environment
    payload = netlify_deploy_payload(local.settings.netlify_site_id or "site")
    sent = send_deploy_notification(
        local.webhook_url, payload, jws_secret=local.jws_secret, host=local.webhook_host
    )
    assert sent.status == 202, sent.body
    summary, executed = _execute(
        tmp_path,
        "caller",
        deploy_id=payload["id"],
        notification_status=sent.status,
        wait_timeout_s=30,
        poll_interval_s=1,
    )
    assert summary["trigger"]["sent"] is False and summary["trigger"]["deploy_id"] == payload["id"]
    assert summary["trigger"]["status"] == 202
    assert "as the caller reports it: **202 Accepted**" in _all_output_text(executed)
    assert summary["verify"]["completed"]
    assert summary["verify"]["caller_reference"] == sent.invalidations[0]["caller_reference"]
    assert summary["history"]["contains_verified"]
    assert summary["manual"]["dry_run"] and not summary["manual"]["created"]
    assert summary["stack"] == local.stack
    pipeline = summary["pipeline"]
    assert pipeline["queue"]["url"] == local.queue_url and not pipeline["missing"]
    assert pipeline["redrive"] == {**pipeline["redrive"], "enabled": False, "moved": 0}
    assert "dead-letter queue `" in _all_output_text(executed)
