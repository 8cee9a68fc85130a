"""The reconciler on the local stack: the real function, run on demand, against the Netlify fake.

The module's ``dev`` stack runs the real ingest, worker and reconciler; its queue moves only
when a test drives the runner. Each test sets the site's published deploy it needs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from function import reconciler, webhook_settings
from local.stack import LocalStack
from tests.local.local_helpers import TEST_JWS_SECRET, TEST_TOKEN

MISSED_AGE = timedelta(minutes=20)  # past the reconciler's 15-minute grace period


@pytest.fixture(scope="module")
def local():
    with LocalStack.start(
        "dev", webhook_token=TEST_TOKEN, jws_secret=TEST_JWS_SECRET, poll_queue=False
    ) as stack:
        yield stack


@pytest.fixture(autouse=True)
def healthy_hooks(local):
    """Every test starts with the stack's hooks enabled and an idle queue."""
    assert local.netlify is not None
    for hook in local.netlify.hooks(local.settings.netlify_site_id):
        if hook["disabled"]:
            local.netlify.answer(
                "POST", f"/api/v1/hooks/{hook['id']}/enable", f"Bearer {local.netlify.token}", b""
            )
    yield
    local.runner.run_until_idle()


def _queued_bodies(local) -> list[dict]:
    """The bodies of every message in the queue, left in it (visible again at once)."""
    sqs = local.client("sqs")
    received = sqs.receive_message(
        QueueUrl=local.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [json.loads(message["Body"]) for message in received]


def _depth(local) -> int:
    attributes = local.client("sqs").get_queue_attributes(
        QueueUrl=local.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _invalidations_of(local, deploy_id: str) -> dict[str, int]:
    prefix = webhook_settings.reference_prefix(deploy_id)
    cloudfront = local.client("cloudfront")
    counts = {}
    for dist_id in local.distribution_ids:
        items = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]
        references = [
            cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"][
                "InvalidationBatch"
            ]["CallerReference"]
            for item in items.get("Items") or []
        ]
        counts[dist_id] = len([ref for ref in references if ref.startswith(prefix)])
    return counts


def _metric_maximum(local, name: str) -> float | None:
    now = datetime.now(UTC)
    points = local.client("cloudwatch").get_metric_statistics(
        Namespace=reconciler.METRIC_NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": reconciler.METRIC_DIMENSION, "Value": local.stack}],
        StartTime=now - timedelta(minutes=30),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max((point["Maximum"] for point in points), default=None)


def test_a_fresh_publish_is_left_to_the_notification_and_the_hooks_are_healthy(local):
    deploy = local.netlify.publish(local.settings.netlify_site_id)
    summary = local.run_reconciler()
    assert summary["outcome"] == reconciler.OK, summary
    assert (summary["deploy_id"], summary["publish"]) == (deploy["id"], reconciler.PUBLISH_IN_GRACE)
    assert summary["missed_publishes"] == 0
    assert summary["hooks"] == {"deploy_created": "ok", "deploy_restored": "ok"}
    assert _depth(local) == 0


def test_a_missed_publish_is_queued_once_and_invalidated_by_the_worker(local):
    missed = local.netlify.publish(
        local.settings.netlify_site_id, published_at=datetime.now(UTC) - MISSED_AGE
    )
    first = local.run_reconciler()
    assert (first["publish"], first["missed_publishes"]) == (reconciler.PUBLISH_MISSED, 1)
    bodies = _queued_bodies(local)
    assert [(b["deploy_id"], b["distribution_id"]) for b in bodies] == [
        (missed["id"], dist_id) for dist_id in local.distribution_ids
    ]
    assert bodies[0]["caller_reference"].startswith(webhook_settings.reference_prefix(missed["id"]))

    again = local.run_reconciler()  # the message is still in the queue: not queued twice
    assert again["missed_publishes"] == 0
    assert _depth(local) == len(local.distribution_ids)

    local.runner.run_until_idle()
    assert _invalidations_of(local, missed["id"]) == {d: 1 for d in local.distribution_ids}
    covered = local.run_reconciler()
    assert (covered["publish"], covered["missed_publishes"]) == (reconciler.PUBLISH_COVERED, 0)
    assert _depth(local) == 0
    assert _metric_maximum(local, reconciler.MISSED_PUBLISHES) == 1


def test_a_hook_netlify_switched_off_is_reported_by_id(local):
    hook_id = local.hook_ids["deploy_restored"]
    local.netlify.disable_hook(hook_id)
    summary = local.run_reconciler()
    assert summary["hooks"] == {"deploy_created": "ok", "deploy_restored": "disabled"}
    assert summary["unhealthy_hooks"] == 1
    assert summary["disabled_hook_ids"] == [hook_id]
    assert summary["outcome"] == reconciler.FINDINGS
    assert _metric_maximum(local, reconciler.UNHEALTHY_HOOKS) == 1


def test_netlify_api_faults_are_counted_and_the_next_run_recovers(local):
    local.netlify.fail_next(503, times=2)
    failed = local.run_reconciler()
    assert failed["netlify_api_errors"] == 2
    assert failed["publish"] == reconciler.PUBLISH_UNKNOWN
    assert _metric_maximum(local, reconciler.NETLIFY_API_ERRORS) == 2
    recovered = local.run_reconciler()
    assert recovered["netlify_api_errors"] == 0
    assert recovered["hooks"] == {"deploy_created": "ok", "deploy_restored": "ok"}


def test_the_reconciler_runs_with_its_own_environment_context_and_log_group(local):
    assert local.reconciler is not None
    environment = local.reconciler.environment
    settings = webhook_settings.load_reconciler_settings(environment)
    assert settings.netlify_api_url == local.netlify.api_url
    assert settings.webhook_endpoint == local.webhook_endpoint
    assert TEST_TOKEN not in json.dumps(environment)
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == local.reconciler_function_name
    secrets = webhook_settings.parse_secrets(
        local.client("ssm").get_parameter(Name=local.secrets_parameter_name, WithDecryption=True)[
            "Parameter"
        ]["Value"]
    )
    assert secrets.netlify_api_token == local.netlify.token

    summary = local.run_reconciler()
    logs = local.client("logs")
    text = ""
    for stream in logs.describe_log_streams(logGroupName=local.reconciler_log_group_name)[
        "logStreams"
    ]:
        events = logs.get_log_events(
            logGroupName=local.reconciler_log_group_name, logStreamName=stream["logStreamName"]
        )["events"]
        text += "\n".join(event["message"] for event in events)
    runs = [json.loads(line) for line in text.splitlines() if '"reconciler_run"' in line]
    assert summary["request_id"] in {run.get("requestId") for run in runs}
    # The token is in the parameter only: never in a log line or a summary.
    assert local.netlify.token not in text
    assert local.netlify.token not in json.dumps(summary)
