"""The fleet notebook executed against the local stack serving two sites (dev and dev-url)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from local.fleet import LocalFleet
from runbook_lib.config import ENV, FLEET_FILE_VARIABLE, NO_PULUMI
from runbook_lib.notify import netlify_deploy_payload, send_deploy_notification
from runbook_lib.report import write_fleet_report, write_report

STACKS = ["dev", "dev-url"]


@pytest.fixture(scope="module")
def fleet():
    with LocalFleet.start(STACKS) as running:
        yield running


@pytest.fixture
def fleet_environment(fleet, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", FLEET_FILE_VARIABLE, *ENV.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.setenv(NO_PULUMI, "1")
    for name, value in fleet.environment().items():
        monkeypatch.setenv(name, value)
    return fleet


def test_the_fleet_view_shows_both_sites_with_the_right_counts(tmp_path, fleet_environment):
    fleet = fleet_environment
    dev = fleet["dev"]
    payload = netlify_deploy_payload(dev.settings.netlify_site_id or "site")
    sent = send_deploy_notification(
        dev.webhook_url, payload, jws_secret=dev.jws_secret, host=dev.webhook_host
    )
    assert sent.status == 202, sent.body
    # The site runbook of the dev stack sees its invalidation complete (the queue runner polls).
    site = write_report(
        {"stack": "dev", "deploy_id": payload["id"], "wait_timeout_s": 30, "poll_interval_s": 1},
        out_dir=tmp_path,
        execution_timeout=180,
    )
    site_summary = site.read_summary()
    assert site_summary and all(r["completed"] for r in site_summary["verify"]["results"])

    report = write_fleet_report(out_dir=tmp_path, execution_timeout=180)
    summary = report.read_summary()
    assert summary, report.error
    rows = {row["stack"]: row for row in summary["stacks"]}
    assert list(rows) == STACKS
    assert rows["dev"]["endpoint"] == "alb" and rows["dev-url"]["endpoint"] == "functionUrl"
    shared = dev.distribution_ids[0]
    assert shared in fleet["dev-url"].distribution_ids  # both example stacks configure it
    [queued] = sent.invalidations
    for stack in STACKS:
        assert rows[stack]["distributions"] == shared
        assert rows[stack]["paths this month"] == 1  # the one deploy's "/*"
        assert rows[stack]["dead letters"] == 0 and rows[stack]["queued"] == 0
        assert rows[stack]["last invalidation"].endswith(f" on {shared}")
        assert rows[stack]["status"].lower() == "completed"
    [account] = summary["accounts"]
    assert account["stacks"] == "dev, dev-url" and account["paths"] == 1  # counted once
    assert account["estimated cost (USD)"] == "0.00"
    assert queued["caller_reference"].startswith("netlify-")
    assert re.fullmatch(r"fleet-\d{8}T\d{6}Z\.html", report.html.name)
    page = report.html.read_text(encoding="utf-8")
    assert "<script" not in page and not re.findall(r"https?://(?!127\.0\.0\.1)", page)
    for local in fleet.stacks.values():
        for secret in (local.rule.token.reveal(), local.jws_secret):
            assert secret not in page and secret not in report.summary.read_text()
