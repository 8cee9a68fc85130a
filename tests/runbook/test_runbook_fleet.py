"""The fleet view's module against two site stacks seeded in moto (fleet file and Pulumi CLI)."""

from __future__ import annotations

import json

import boto3
import pytest

from runbook_lib.config import FLEET_FILE_VARIABLE, NO_PULUMI
from runbook_lib.fleet import fleet_chart, fleet_stacks, fleet_view
from runbook_lib.verdict import FAIL, PASS, WARN
from tests.runbook.conftest import seed_site

REGION = "us-east-1"


@pytest.fixture
def two_sites(moto_aws, make_distribution, invalidate):
    """Stack "blog" (alb) on D1 and D2, stack "docs" (functionUrl) on D2 and D3: D2 is shared,
    as when two stacks configure one distribution. This month: 2 invalidations of 1 path on D1,
    1 of 3 paths on D2, none on D3."""
    d1, d2, d3 = make_distribution(), make_distribution(), make_distribution()
    blog = seed_site("blog", [d1, d2])
    docs = seed_site("docs", [d2, d3], endpoint="functionUrl")
    invalidate(d1, ["/*"], "netlify-a-0000000000000001")
    invalidate(d1, ["/*"], "netlify-b-0000000000000002")
    newest = invalidate(d2, ["/a", "/b", "/c"], "runbook-manual-1")
    return {"blog": blog, "docs": docs, "ids": (d1, d2, d3), "newest": newest}


def _fleet_file(tmp_path, stacks: dict) -> dict[str, str]:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(stacks))
    return {FLEET_FILE_VARIABLE: str(path), NO_PULUMI: "1"}


def test_every_stack_of_the_fleet_file_is_one_row_with_the_right_counts(two_sites, tmp_path):
    env = _fleet_file(tmp_path, {"blog": two_sites["blog"], "docs": two_sites["docs"]})
    fleet = fleet_view(environ=env)
    table = fleet.table().set_index("stack")
    assert list(table.index) == ["blog", "docs"]
    assert table.loc["blog", "endpoint"] == "alb" and table.loc["docs", "endpoint"] == "functionUrl"
    d1, d2, d3 = two_sites["ids"]
    assert table.loc["blog", "distributions"] == f"{d1}, {d2}"
    assert table.loc["blog", "last invalidation"] == f"{two_sites['newest']} on {d2}"
    assert table.loc["docs", "last invalidation"] == f"{two_sites['newest']} on {d2}"
    assert table.loc["blog", "paths this month"] == 2 + 3
    assert table.loc["docs", "paths this month"] == 3  # the shared distribution's paths
    assert (table.loc["blog", "queued"], table.loc["blog", "dead letters"]) == (0, 0)
    assert table.loc["blog", "reconciler"] == "none"
    [account] = fleet.accounts
    assert account.stacks == ["blog", "docs"] and account.distributions == sorted([d1, d2, d3])
    assert (account.invalidations, account.paths) == (3, 5)  # D2 counted once, not twice
    assert fleet.accounts_table().iloc[0]["share of the free 1,000"] == "0.5%"
    assert fleet.verdict().verdict == PASS
    summary = fleet.summary()
    assert [row["stack"] for row in summary["stacks"]] == ["blog", "docs"]
    assert "token=" not in json.dumps(summary)


def test_dead_letters_and_alarms_fail_their_row(two_sites, tmp_path):
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=two_sites["docs"]["NCW_DEAD_LETTER_QUEUE_URL"], MessageBody="{}")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName="ncw-blog-dead-letters",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "ncw-blog-dead-letters"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[two_sites["blog"]["NCW_ALARM_TOPIC_ARN"]],
    )
    cloudwatch.set_alarm_state(
        AlarmName="ncw-blog-dead-letters", StateValue="ALARM", StateReason="test"
    )
    env = _fleet_file(tmp_path, {"blog": two_sites["blog"], "docs": two_sites["docs"]})
    fleet = fleet_view(environ=env)
    rows = {row.stack: row for row in fleet.rows}
    assert rows["docs"].dead_letters == 1 and rows["docs"].verdict == FAIL
    assert rows["blog"].alarms_firing == ["ncw-blog-dead-letters"]
    assert rows["blog"].alarms_total == 1 and rows["blog"].verdict == FAIL
    verdict = fleet.verdict()
    assert verdict.verdict == FAIL
    assert any(reason.startswith("stack docs: 1 dead letter(s)") for reason in verdict.reasons)


def test_a_stack_is_narrowed_by_the_stacks_parameter(two_sites, tmp_path):
    env = _fleet_file(tmp_path, {"blog": two_sites["blog"], "docs": two_sites["docs"]})
    assert [row.stack for row in fleet_view("docs", environ=env).rows] == ["docs"]
    assert fleet_stacks("blog, docs", environ=env).stacks == ["blog", "docs"]


@pytest.fixture
def fake_pulumi(tmp_path, monkeypatch, two_sites):
    """A ``pulumi`` on PATH that lists the two stacks and prints each one's outputs."""
    outputs = {}
    for stack in ("blog", "docs"):
        env = two_sites[stack]
        outputs[stack] = {
            "webhook_url": env["NCW_WEBHOOK_URL"],
            "distribution_ids": env["NCW_DISTRIBUTION_IDS"].split(","),
            "function_name": env["NCW_FUNCTION_NAME"],
            "queue_url": env["NCW_QUEUE_URL"],
            "dead_letter_queue_url": env["NCW_DEAD_LETTER_QUEUE_URL"],
            "worker_function_name": env["NCW_WORKER_FUNCTION_NAME"],
            "alarm_topic_arn": env["NCW_ALARM_TOPIC_ARN"],
            "endpoint": env["NCW_ENDPOINT"],
            "region": REGION,
        }
    folder = tmp_path / "bin"
    folder.mkdir()
    for stack, values in outputs.items():
        (folder / f"{stack}.json").write_text(json.dumps(values))
    (folder / "ls.json").write_text(json.dumps([{"name": "blog"}, {"name": "docs"}]))
    script = folder / "pulumi"
    # `pulumi stack ls --json` or `pulumi stack output --json --show-secrets --stack NAME`
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$2" = ls ]; then cat "{folder}/ls.json"; else cat "{folder}/$6.json"; fi\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return folder


def test_real_stacks_are_listed_and_read_with_the_pulumi_cli(fake_pulumi, two_sites):
    fleet = fleet_view(environ={"PATH": str(fake_pulumi) + ":/usr/bin:/bin"})
    assert fleet.sources.note == "pulumi stack ls --json"
    table = fleet.table().set_index("stack")
    assert list(table.index) == ["blog", "docs"]
    assert table.loc["docs", "endpoint"] == "functionUrl"
    assert table.loc["blog", "paths this month"] == 5
    assert all(row.config and "pulumi stack output" in row.config.pulumi_note for row in fleet.rows)


def test_without_a_fleet_file_or_the_cli_the_fleet_is_empty_and_says_why(moto_aws):
    fleet = fleet_view(environ={NO_PULUMI: "1"})
    assert fleet.rows == [] and fleet.verdict().verdict == WARN
    assert NO_PULUMI in fleet.verdict().reasons[0]


def test_the_account_chart_shows_one_path_as_a_visible_bar(two_sites, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    env = _fleet_file(tmp_path, {"blog": two_sites["blog"]})
    fleet = fleet_view(environ=env)
    figure = fleet_chart(fleet)
    [axis] = figure.axes
    assert axis.get_xscale() == "log"
    [bar] = axis.patches
    to_axes = axis.transData + axis.transAxes.inverted()
    (left, _), (right, _) = to_axes.transform(
        [(bar.get_x(), bar.get_y()), (bar.get_x() + bar.get_width(), bar.get_y())]
    )
    assert right - left > 0.05 and bar.get_x() + bar.get_width() == pytest.approx(5)
    assert [text.get_text() for text in axis.texts] == ["5 (0.5%)"]
