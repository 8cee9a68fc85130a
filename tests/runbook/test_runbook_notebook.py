"""The notebooks: file hygiene, papermill's view of the parameters, and executed runs of the
site runbook against the local stack (a copy of the dev stack with two distributions)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from function.invalidation_message import new_message
from function.webhook_settings import caller_reference
from infra.stack_files import PROJECT_DIR
from local.stack import LocalStack
from runbook_lib.config import ENV, FLEET_FILE_VARIABLE, NO_PULUMI
from runbook_lib.notify import netlify_deploy_payload, send_deploy_notification
from runbook_lib.pipeline import ERROR_CODE_ATTRIBUTE
from runbook_lib.report import write_report

NOTEBOOKS = PROJECT_DIR / "notebooks"
RUNBOOK = NOTEBOOKS / "runbook.ipynb"
FLEET = NOTEBOOKS / "fleet.ipynb"
PAPERMILL = Path(sys.executable).parent / "papermill"
# Name and papermill's inferred type of every parameter.
PARAMETERS = {
    "stack": "str",
    "region": "str",
    "aws_endpoint_url": "str",
    "webhook_url": "str",
    "distribution_id": "str",
    "deploy_id": "str",
    "notification_status": "int",
    "send_test_notification": "bool",
    "test_event": "str",
    "wait_timeout_s": "float",
    "poll_interval_s": "float",
    "log_window_hours": "float",
    "request_id": "str",
    "history_limit": "int",
    "invalidate_paths": "bool",
    "manual_paths": "list[str]",
    "register_netlify_hooks": "bool",
    "enable_disabled_hooks": "bool",
    "redrive_dead_letters": "bool",
    "summary_path": "str",
}
WRITES = (
    "send_test_notification",
    "invalidate_paths",
    "register_netlify_hooks",
    "enable_disabled_hooks",
    "redrive_dead_letters",
)
FLEET_PARAMETERS = {
    "stacks": "list[str]",
    "aws_endpoint_url": "str",
    "log_window_hours": "float",
    "summary_path": "str",
}
# Variables that would point the kernel at a stack; cleared so each run sees only its own.
RUNBOOK_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "NETLIFY_AUTH_TOKEN",
    "NETLIFY_API_URL",
    FLEET_FILE_VARIABLE,
    *ENV.values(),
)


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _parameters(path: Path) -> dict:
    first = _code_cells(nbformat.read(path, as_version=4))[0]
    assert "parameters" in first.metadata.get("tags", [])
    values = {}
    for node in ast.parse(first.source).body:
        assert isinstance(node, ast.AnnAssign), "only annotated assignments in the parameters"
        assert isinstance(node.target, ast.Name) and node.value is not None
        values[node.target.id] = ast.literal_eval(node.value)
    return values


# ---------------------------------------------------------------------------- hygiene


@pytest.mark.parametrize("path", [RUNBOOK, FLEET], ids=["runbook", "fleet"])
def test_notebook_is_committed_without_outputs_and_with_its_pair(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in _code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert notebook.metadata.kernelspec == {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    assert notebook.metadata.jupytext["formats"] == "ipynb,py:percent"
    paired = jupytext.read(path.with_suffix(".py"))
    assert [(c.cell_type, c.source.strip()) for c in notebook.cells] == [
        (c.cell_type, c.source.strip()) for c in paired.cells
    ]
    assert [c.metadata.get("tags") for c in _code_cells(notebook)] == [
        c.metadata.get("tags") for c in _code_cells(paired)
    ]
    for cell in _code_cells(notebook)[1:]:  # short cells; the parameters are one a line
        assert len(cell.source.splitlines()) <= 15, cell.source[:60]
    assert _code_cells(notebook)[-1].metadata.get("tags") == ["verdict-gate"]


def test_the_runbook_is_read_only_by_default_with_safe_defaults():
    values = _parameters(RUNBOOK)
    assert set(values) == set(PARAMETERS)
    assert "dry_run" not in values
    for name in WRITES:
        assert values[name] is False, name  # every write has its own switch, off
    for name in ("webhook_url", "aws_endpoint_url", "deploy_id", "stack", "summary_path"):
        assert values[name] == "", name  # no secrets, no endpoints baked into the file
    assert _parameters(FLEET) == {
        "stacks": [],
        "aws_endpoint_url": "",
        "log_window_hours": 24,
        "summary_path": "",
    }


def test_every_section_has_a_heading():
    headings = [
        c.source for c in nbformat.read(RUNBOOK, as_version=4).cells if c.cell_type == "markdown"
    ]
    for number in range(1, 11):
        assert any(text.startswith(f"## {number}. ") for text in headings), number


@pytest.mark.parametrize(
    ("path", "expected"),
    [(RUNBOOK, PARAMETERS), (FLEET, FLEET_PARAMETERS)],
    ids=["runbook", "fleet"],
)
def test_papermill_help_notebook_lists_every_parameter_with_its_type(path, expected):
    done = subprocess.run(  # noqa: S603 (the venv's papermill, fixed arguments)
        [str(PAPERMILL), "--help-notebook", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed = dict(re.findall(r"^  (\w+): (\S+) \(default", done.stdout, re.MULTILINE))
    assert listed == expected, done.stdout + done.stderr
    assert "Unable to parse" not in done.stderr


# ---------------------------------------------------------------------------- executed


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


def _outputs_text(notebook_path: Path) -> str:
    notebook = nbformat.read(notebook_path, as_version=4)
    return json.dumps([cell.get("outputs", []) for cell in notebook.cells])


def test_runs_top_to_bottom_with_its_defaults_without_aws_or_secrets(tmp_path, clean_environment):
    assert shutil.which("pulumi") is None
    report = write_report(out_dir=tmp_path, execution_timeout=120)
    assert report.error is None and report.verdict == "WARN" and report.ok
    summary = report.read_summary()
    assert summary and NO_PULUMI in summary["pulumi_note"] and summary["live"] is False
    assert summary["trigger"]["sent"] is False and summary["history"]["rows"] == 0
    assert summary["manual"]["enabled"] is False and not summary["manual"]["created"]
    assert summary["netlify"]["action"] == "skipped"
    assert summary["pipeline"]["verdict"] == "SKIPPED" and summary["pipeline"]["queue"] is None
    assert "No stack to talk to" in _outputs_text(report.notebook)
    assert re.fullmatch(r"runbook-dev-\d{8}T\d{6}Z\.html", report.html.name)
    assert report.notebook.name == report.html.name.replace(".html", ".ipynb")
    assert report.summary.name == report.html.name.replace(".html", ".json")


TWO_DISTRIBUTIONS = ["E2EXAMPLE1ABCD", "E3EXAMPLE2WXYZ"]


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    """The dev stack with a second distribution, served locally (one per test module)."""
    project = tmp_path_factory.mktemp("project")
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", project / "Pulumi.yaml")
    config = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    config["config"]["netlify-cloudfront-webhook:distributionIds"] = TWO_DISTRIBUTIONS
    (project / "Pulumi.twin.yaml").write_text(yaml.safe_dump(config))
    with LocalStack.start(stack="twin", project_dir=project) as local:
        yield local


@pytest.fixture
def local_environment(local_stack, clean_environment):
    for name, value in local_stack.environment().items():
        clean_environment.setenv(name, value)
    return local_stack


def _run(tmp_path: Path, **parameters):
    return write_report(
        {"wait_timeout_s": 30, "poll_interval_s": 1, **parameters},
        out_dir=tmp_path,
        execution_timeout=180,
    )


def _invalidations(local: LocalStack) -> dict[str, list[str]]:
    cloudfront = local.client("cloudfront")
    return {
        dist: sorted(
            item["Id"]
            for item in cloudfront.list_invalidations(DistributionId=dist)["InvalidationList"].get(
                "Items"
            )
            or []
        )
        for dist in local.distribution_ids
    }


def _log_events(local: LocalStack, group: str) -> int:
    return len(local.client("logs").filter_log_events(logGroupName=group).get("events", []))


def _secrets(local: LocalStack) -> list[str]:
    found = [local.rule.token.reveal(), local.jws_secret]
    return found + ([local.netlify_api_token] if local.netlify_api_token else [])


def _assert_no_secret(local: LocalStack, report) -> None:
    for path in (report.html, report.notebook, report.summary):
        text = path.read_text(encoding="utf-8")
        for secret in _secrets(local):
            assert secret not in text, path.name


def test_the_read_only_default_changes_nothing(tmp_path, local_environment):
    local = local_environment
    site = local.settings.netlify_site_id
    assert local.netlify is not None and site
    before = _invalidations(local)
    hooks_before = local.netlify.hooks(site)
    ingest_records = _log_events(local, local.log_group_name)
    local.netlify.requests.clear()
    report = _run(tmp_path)
    summary = report.read_summary()
    assert summary and summary["live"] and summary["trigger"]["mode"] == "newest"
    assert _invalidations(local) == before  # no invalidation: neither test nor manual
    assert _log_events(local, local.log_group_name) == ingest_records  # no notification
    assert summary["pipeline"]["queue"]["visible"] == 0  # no message
    assert local.netlify.hooks(site) == hooks_before  # no hook created, changed or enabled
    assert {request.method for request in local.netlify.requests} == {"GET"}
    sections = {item["section"]: item for item in summary["verdict"]["sections"]}
    for switched_off in ("redrive", "manual invalidation"):
        assert sections[switched_off]["verdict"] == "SKIPPED"
        assert "switched off" in sections[switched_off]["reasons"][0]
    assert sections["netlify hooks"]["verdict"] == "PASS"  # both hooks present and enabled
    assert sections["health"]["verdict"] == "PASS", sections["health"]
    _assert_no_secret(local, report)


def test_a_test_notification_is_verified_on_every_distribution(tmp_path, local_environment):
    local = local_environment
    report = _run(
        tmp_path, send_test_notification=True, webhook_url=local.webhook_url.split("?")[0]
    )
    summary = report.read_summary()
    assert summary, report.error
    trigger = summary["trigger"]
    assert trigger["sent"] and trigger["accepted"] and trigger["status"] == 202
    results = summary["verify"]["results"]
    assert sorted(r["distribution_id"] for r in results) == sorted(TWO_DISTRIBUTIONS)
    queued = {
        item["distribution_id"]: item["caller_reference"]
        for item in trigger["body"]["invalidations"]
    }
    for result in results:
        assert result["completed"] and result["verdict"] == "PASS", result
        assert result["matched_by"] == "reference"
        assert result["caller_reference"] == queued[result["distribution_id"]]
    assert summary["history"]["contains_verified"]
    assert summary["troubleshooting"]["found"][trigger["deploy_id"]] >= 2  # ingest and worker
    _assert_no_secret(local, report)  # the token-less parameter took the token from the env


def test_a_refused_trigger_skips_the_wait_and_fails_the_run(tmp_path, local_environment):
    local = local_environment
    wrong = local.webhook_url.split("?")[0] + "?token=not-the-right-token-000000"
    report = _run(tmp_path, send_test_notification=True, webhook_url=wrong, poll_interval_s=600)
    summary = report.read_summary()
    assert summary and summary["trigger"]["status"] in (401, 404)  # the ALB rule or the function
    for result in summary["verify"]["results"]:
        assert result["polls"] == 0 and result["elapsed_s"] == 0
        assert "not waiting" in result["skipped"] and "HTTP" in result["skipped"]
    assert report.verdict == "FAIL" and report.error is not None and not report.ok
    assert any(reason.startswith("trigger:") for reason in report.reasons)


def test_a_misconfigured_function_fails_and_papermill_exits_non_zero(tmp_path, local_environment):
    local = local_environment
    lambda_ = local.client("lambda")
    runtime = lambda_.get_function_configuration(FunctionName=local.function_name)["Runtime"]
    lambda_.update_function_configuration(FunctionName=local.function_name, Runtime="python3.12")
    try:
        done = subprocess.run(  # noqa: S603 (the venv's papermill, fixed arguments)
            [
                str(PAPERMILL),
                str(RUNBOOK),
                str(tmp_path / "cli.ipynb"),
                "-p",
                "summary_path",
                str(tmp_path / "cli.json"),
                "--cwd",
                str(NOTEBOOKS),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        report = _run(tmp_path)
    finally:
        lambda_.update_function_configuration(FunctionName=local.function_name, Runtime=runtime)
    assert done.returncode != 0 and "VerdictFailed" in done.stderr
    summary = json.loads((tmp_path / "cli.json").read_text())  # written before the gate raised
    assert summary["verdict"]["verdict"] == "FAIL"
    assert any("python3.12" in reason for reason in summary["verdict"]["reasons"])
    assert report.verdict == "FAIL" and report.html.is_file()
    page = report.html.read_text(encoding="utf-8")
    assert "python3.12" in page and "Traceback" not in page  # the verdict says why, not a trace
    assert "An Exception was encountered" not in page


def test_a_deploy_the_caller_notified_is_verified_by_its_prefix(tmp_path, local_environment):
    local = local_environment
    payload = netlify_deploy_payload(local.settings.netlify_site_id or "site")
    sent = send_deploy_notification(
        local.webhook_url, payload, jws_secret=local.jws_secret, host=local.webhook_host
    )
    assert sent.status == 202, sent.body
    report = _run(tmp_path, deploy_id=payload["id"], notification_status=sent.status)
    summary = report.read_summary()
    assert summary and summary["trigger"]["sent"] is False
    assert summary["trigger"]["deploy_id"] == payload["id"] and summary["trigger"]["status"] == 202
    assert "as the caller reports it: **202 Accepted**" in _outputs_text(report.notebook)
    references = {item["caller_reference"] for item in sent.invalidations}
    for result in summary["verify"]["results"]:
        assert result["completed"] and result["matched_by"] == "deploy prefix"
        assert result["caller_reference"] in references


def test_the_switches_do_what_they_say(tmp_path, local_environment):
    local = local_environment
    paths = list(local.settings.invalidation_paths)
    body = new_message(
        deploy_id="deadbeef" * 3,
        site_id=local.settings.netlify_site_id,
        event="deploy_created",
        context="production",
        distribution_id=local.distribution_ids[0],
        paths=paths,
        caller_reference=caller_reference("deadbeef" * 3, paths),
    ).to_body()
    local.client("sqs").send_message(
        QueueUrl=local.dead_letter_queue_url,
        MessageBody=body,
        MessageAttributes={
            ERROR_CODE_ATTRIBUTE: {"DataType": "String", "StringValue": "ServiceUnavailable"}
        },
    )
    before = _invalidations(local)
    report = _run(
        tmp_path,
        invalidate_paths=True,
        manual_paths="/about/index.html, /about/index.html",  # as `papermill -p` passes it
        redrive_dead_letters=True,
    )
    summary = report.read_summary()
    assert summary, report.error
    assert summary["manual"]["paths"] == ["/about/index.html"] and summary["manual"]["created"]
    assert len(summary["manual"]["invalidation_ids"]) == 2
    after = _invalidations(local)
    for dist in local.distribution_ids:
        assert set(summary["manual"]["invalidation_ids"]) & (set(after[dist]) - set(before[dist]))
    rows = summary["pipeline"]["dead_letters"]["rows"]
    assert [row["error"] for row in rows if row["deploy"] == "deadbeef" * 3] == [
        "ServiceUnavailable"
    ]
    assert summary["pipeline"]["redrive"]["moved"] == len(rows)


# ---------------------------------------------------------------------------- the report


def test_the_report_has_no_code_no_external_script_and_no_secret(tmp_path, local_environment):
    local = local_environment
    report = _run(tmp_path, send_test_notification=True)
    page = report.html.read_text(encoding="utf-8")
    assert "<script" not in page  # no require.js, MathJax or mermaid: readable offline
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert all(address.startswith("http://127.0.0.1") for address in addresses), addresses
    body = page[page.index("<body") :]
    assert "jp-InputArea-editor" not in body and "hl-ipython3" not in body  # no code cells
    assert "rb.show(" not in page
    assert "import runbook_lib" not in page
    title = re.search(r"<title>([^<]*)</title>", page)
    assert title and re.fullmatch(r"Runbook: stack twin, \d{4}-\d\d-\d\d \d\d:\d\d UTC", title[1])
    # The verdict comes first, in colour, and again in the recap.
    first_output = page.index("jp-OutputArea-output")
    assert page.index("Verdict:") < page.index("1. Where am I?")
    assert page.index("Verdict:", first_output) < page.index("1. Where am I?")
    assert page.count('>Verdict: <span style="color:') == 2
    # One progress line for the wait, not one per refresh.
    [progress] = re.findall(r"waited \d+ of \d+ s, completed[^<]*", page)
    assert "2/2 distribution(s)" in progress
    assert not re.search(r"[\u2600-\u27bf\U0001f300-\U0001faff]", page)  # no emoji
    assert 'style="text-align:left' in page and "dataframe" not in page  # our tables only
    _assert_no_secret(local, report)
