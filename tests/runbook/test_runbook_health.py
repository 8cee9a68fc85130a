"""Section 2 (health of the whole path), section 4 (the reconciler) and the verdict, on moto."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from runbook_lib.aws import AwsClients
from runbook_lib.config import StackOutputs, load_config
from runbook_lib.display import coloured_words, table_html, verdict_bundle
from runbook_lib.path_health import invalidations_in_progress, path_health
from runbook_lib.reconciler import NAMESPACE, reconciler_status
from runbook_lib.summary import recap, run_summary, verdict_of
from runbook_lib.verdict import FAIL, PASS, SKIPPED, WARN, Outcome, VerdictFailed, gate, overall
from tests.runbook.conftest import seed_site

REGION = "us-east-1"


@pytest.fixture
def site(moto_aws, make_distribution):
    """A healthy site stack in moto: two distributions, three functions, its parameter."""
    distribution_ids = [make_distribution(), make_distribution()]
    env = seed_site("dev", distribution_ids, reconciler=True)
    config = load_config("dev", environ=env, stack_outputs=StackOutputs(None, "n/a"))
    return config


def _health(config):
    aws = AwsClients(config)
    account = aws.sts.get_caller_identity()["Account"]
    return path_health(config, aws, account=account)


def _checks(result) -> dict[str, tuple[str, str]]:
    return {check.check: (check.verdict, check.detail) for check in result.checks}


def test_a_healthy_path_passes(site):
    result = _health(site)
    checks = _checks(result)
    assert result.verdict == PASS, result.reasons()
    assert checks["account"][0] == PASS and checks["region"][0] == PASS
    assert checks["ingest function"] == (PASS, "`ncw-dev` is Active and runs python3.13.")
    assert checks["worker function"][0] == PASS and checks["reconciler function"][0] == PASS
    assert checks["ingest secrets version"][0] == PASS
    assert [item.fits_next for item in result.in_progress] == [True, True]
    assert result.outcome().verdict == PASS


def test_a_function_on_another_runtime_fails(site):
    boto3.client("lambda", region_name=REGION).update_function_configuration(
        FunctionName="ncw-dev-worker", Runtime="python3.12"
    )
    result = _health(site)
    verdict, detail = _checks(result)["worker function"]
    assert verdict == FAIL and "python3.12" in detail and "python3.13" in detail
    assert result.verdict == FAIL


def test_a_missing_function_fails(site):
    boto3.client("lambda", region_name=REGION).delete_function(FunctionName="ncw-dev")
    result = _health(site)
    verdict, detail = _checks(result)["ingest function"]
    assert verdict == FAIL and "cannot be read" in detail and "ResourceNotFound" in detail


def test_secrets_rotated_outside_pulumi_fail_until_the_function_follows(site):
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(
        Name=site.secrets_parameter,
        Type="SecureString",
        Value='{"token": "rotated-token-0000000000"}',
        Overwrite=True,
    )
    result = _health(site)
    verdict, detail = _checks(result)["ingest secrets version"]
    assert verdict == FAIL and "version 1" in detail and "version 2" in detail
    assert "rotated-token" not in json.dumps([vars(check) for check in result.checks])
    lambda_ = boto3.client("lambda", region_name=REGION)
    variables = lambda_.get_function_configuration(FunctionName="ncw-dev")["Environment"]
    variables["Variables"]["SECRETS_VERSION"] = "2"
    lambda_.update_function_configuration(FunctionName="ncw-dev", Environment=variables)
    assert _checks(_health(site))["ingest secrets version"][0] == PASS


def test_credentials_for_another_account_fail(site):
    site.stack_account = "210987654321"  # as an output ARN of a stack elsewhere would say
    verdict, detail = _checks(_health(site))["account"]
    assert verdict == FAIL and "210987654321" in detail and "123456789012" in detail


def test_a_distribution_the_ingest_does_not_know_fails(site):
    site.distribution_ids = (*site.distribution_ids, "ENOTINGEST")
    verdict, detail = _checks(_health(site))["ingest distributions"]
    assert verdict == FAIL and "pulumi up" in detail


def test_invalidations_in_progress_are_counted_against_cloudfronts_limits(
    site, cloudfront, invalidate, set_status
):
    crowded, quiet = site.distribution_ids
    for index in range(15):
        made = invalidate(crowded, [f"/section-{index}/*"], f"busy-{index}")
        set_status(crowded, made, "InProgress")
    made = invalidate(crowded, ["/a.html", "/b.html"], "files")
    set_status(crowded, made, "InProgress")
    invalidate(crowded, ["/*"], "done-long-ago")  # moto: Completed at once, not counted
    busy = invalidations_in_progress(cloudfront, crowded, ("/*",))
    assert (busy.invalidations, busy.wildcard_paths, busy.file_paths) == (16, 15, 2)
    assert not busy.fits_next and busy.verdict == WARN  # a 16th wildcard would be refused
    assert invalidations_in_progress(cloudfront, crowded, ("/index.html",)).fits_next
    result = _health(site)
    rows = {item.distribution_id: item for item in result.in_progress}
    assert not rows[crowded].fits_next and rows[quiet].fits_next
    assert result.verdict == WARN
    assert any("no room for the next deploy" in reason for reason in result.reasons())


# ---------------------------------------------------------------------------- 4. reconciler


def _run_line(logs, group: str, minutes_ago: float, **counts) -> None:
    stream = f"run-{minutes_ago}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    record = {
        "timestamp": "x",
        "level": "INFO",
        "message": "reconciled",
        "published_deploy_id": "d1",
        "missed_publishes": 0,
        "unhealthy_hooks": 0,
        "netlify_api_errors": 0,
        **counts,
    }
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {
                "timestamp": int((time.time() - minutes_ago * 60) * 1000),
                "message": json.dumps(record),
            }
        ],
    )


def test_the_reconciler_last_run_and_its_findings(site, logs):
    group = site.reconciler_log_group
    assert group == "/aws/lambda/ncw-dev-reconciler"  # derived from the function's name
    _run_line(logs, group, 30)
    _run_line(logs, group, 5, missed_publishes=1, unhealthy_hooks=1)
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "MissedPublishes",
                "Dimensions": [{"Name": "Stack", "Value": "dev"}],
                "Value": 1,
            }
        ],
    )
    status = reconciler_status(site, AwsClients(site), window_hours=1)
    assert len(status.runs) == 2 and status.last_run is not None
    assert status.last_run.count("missed_publishes") == 1
    outcome = status.outcome()
    assert outcome.verdict == WARN
    assert any("queued their invalidations" in reason for reason in outcome.reasons)
    assert any("enable_disabled_hooks" in reason for reason in outcome.reasons)
    metrics = status.metrics.set_index("metric")
    assert metrics.loc["MissedPublishes", "sum"] == 1
    assert metrics.loc["UnhealthyHooks", "sum"] == 0


def test_a_quiet_reconciler_passes_and_a_silent_one_warns(site, logs):
    _run_line(logs, site.reconciler_log_group, 3)
    assert reconciler_status(site, AwsClients(site)).outcome().verdict == PASS
    later = datetime.now(UTC) + timedelta(hours=30)  # the last run is now outside the window
    silent = reconciler_status(site, AwsClients(site), window_hours=24, now=later).outcome()
    assert silent.verdict == WARN and "schedule" in silent.reasons[0]


def test_a_stack_without_a_reconciler_skips_the_section(moto_aws, make_distribution):
    env = seed_site("plain", [make_distribution()])
    config = load_config("plain", environ=env, stack_outputs=StackOutputs(None, "n/a"))
    status = reconciler_status(config, AwsClients(config))
    assert status.skipped and "netlifyApiToken" in status.skipped
    assert status.outcome().verdict == SKIPPED


# ---------------------------------------------------------------------------- the verdict


def test_the_verdict_is_the_worst_section_with_its_reasons():
    sections = [
        Outcome("a", PASS, ["fine"]),
        Outcome("b", WARN, ["slow"]),
        Outcome("c", SKIPPED, ["switched off"]),
    ]
    assert overall(sections).verdict == WARN and overall(sections).reasons == ["b: slow"]
    failed = overall([*sections, Outcome("d", FAIL, ["broken", "twice"])])
    assert failed.verdict == FAIL and failed.reasons == ["d: broken", "d: twice"]
    assert overall([Outcome("a", PASS)]).verdict == PASS
    nothing = overall([Outcome("a", SKIPPED, ["no stack"])])
    assert nothing.verdict == WARN and "nothing was checked" in nothing.reasons[0]
    with pytest.raises(ValueError):
        Outcome("x", "None")


def test_the_gate_raises_only_on_fail():
    assert gate({"verdict": {"verdict": PASS, "reasons": []}}) == PASS
    assert gate({"verdict": {"verdict": WARN, "reasons": ["x"]}}) == WARN
    with pytest.raises(VerdictFailed, match="health: the ingest"):
        gate({"verdict": {"verdict": FAIL, "reasons": ["health: the ingest is missing"]}})


def test_the_summary_of_a_full_check_names_every_section(site):
    summary = json.loads(json.dumps(run_summary(config=site, health=_health(site))))
    sections = [item["section"] for item in summary["verdict"]["sections"]]
    assert sections == [
        "where am I",
        "health",
        "pipeline",
        "redrive",
        "reconciler",
        "trigger",
        "verify",
        "history",
        "manual invalidation",
        "troubleshooting",
        "netlify hooks",
    ]
    text = recap(summary)
    assert len(text.splitlines()) == 1 + len(sections) and "None" not in text
    assert verdict_of(summary).verdict == summary["verdict"]["verdict"] == PASS


def test_status_words_are_coloured_words_not_emoji():
    bundle = verdict_bundle(overall([Outcome("health", FAIL, ["the `ncw-dev` function"])]))
    assert '<span style="color:#cf222e;font-weight:bold">FAIL</span>' in bundle["text/html"]
    assert "<code>ncw-dev</code>" in bundle["text/html"]
    assert bundle["text/plain"].startswith("Verdict: FAIL")
    assert coloured_words("PASSED PASS") == (
        'PASSED <span style="color:#1a7f37;font-weight:bold">PASS</span>'
    )
    for text in (bundle["text/html"], bundle["text/plain"]):
        assert not any(ord(char) > 0x2FFF for char in text)  # no emoji, no symbol fonts


def test_tables_have_no_index_column_and_left_aligned_text():
    import pandas as pd

    frame = pd.DataFrame([{"check": "account", "verdict": "PASS", "detail": "<b>x</b>"}])
    shown = table_html(frame)
    assert len(re.findall(r"<th[ >]", shown)) == 3  # the columns only: no index header
    assert "text-align:left" in shown and "<b>x</b>" not in shown  # escaped
    assert ">0<" not in shown  # no index cell
