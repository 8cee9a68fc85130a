"""The reconciler (``function.reconciler``): missed publishes and unhealthy hooks, on moto and a
fake of Netlify's API (``netlify_fake``).

The tests assert on what moto holds afterwards (the queue's messages, CloudFront's
invalidations, CloudWatch's metrics) and on the handler's returned summary. Times are chosen
relative to now (Netlify's ``published_at``), and moto's invalidation create times are set in
its backend where a test needs an invalidation from the past.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws
from moto.cloudfront.models import cloudfront_backends
from moto.core.models import DEFAULT_ACCOUNT_ID

from function import netlify_api, reconciler, webhook_settings, worker
from function.invalidation_message import MESSAGE_KEYS, parse_message
from function.netlify_api import GET_SITE, HOOK_EVENTS, LIST_HOOKS, Timeouts
from tests.function.function_testkit import DISTRIBUTION_CONFIG, JWS_SECRET, TOKEN, FakeContext
from tests.function.netlify_fake import (
    SITE_PASSWORD,
    SKEW_PROTECTION_TOKEN,
    FakeNetlify,
    Fault,
    hook_object,
    iso,
    minutes_ago,
)
from tests.function.worker_testkit import sqs_event

NETLIFY_TOKEN = "nfp_Recon1ciler-Personal-Access-Token-7d41b0"
SITE_ID = "4f1b9c2e-8d3a-4e6f-9b7c-2a1d5e8f0c3b"
DEPLOY_ID = "6566f3c2b9a1d40008a7e1f3"
OLD_DEPLOY_ID = "65500a0b9c8d7e0008f1e2d3"
WEBHOOK_ENDPOINT = "https://hooks.example.com/netlify"
WEBHOOK_URL = f"{WEBHOOK_ENDPOINT}?token={TOKEN}"
# An EventBridge scheduled event: the reconciler ignores it, but this is what it gets.
SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-28T09:30:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/example-site-reconciler"],
    "detail": {},
}


# -- the test world ------------------------------------------------------------------------------


@dataclass
class Clients:
    cloudfront: Any
    ssm: Any
    sqs: Any
    cloudwatch: Any


@pytest.fixture(scope="module")
def aws() -> Iterator[Clients]:
    """moto's AWS for this module, with the tests' own clients (made once: they are slow)."""
    with mock_aws():
        yield Clients(
            boto3.client("cloudfront"),
            boto3.client("ssm", region_name="us-east-1"),
            boto3.client("sqs", region_name="us-east-1"),
            boto3.client("cloudwatch", region_name="us-east-1"),
        )
        reconciler.reset_state()  # no client made inside the mock outlives it
        worker.reset_state()


@pytest.fixture
def netlify() -> Iterator[FakeNetlify]:
    fake = FakeNetlify(site_id=SITE_ID, token=NETLIFY_TOKEN)
    yield fake
    fake.stop()


@dataclass
class Site:
    """One site's AWS (two distributions, a queue and its dead-letter queue, the secrets) and
    its Netlify side, and the reconciler's environment naming them."""

    aws: Clients
    netlify: FakeNetlify
    monkeypatch: pytest.MonkeyPatch
    distribution_ids: tuple[str, ...]
    queue_url: str
    dead_letter_url: str
    parameter: str
    stack: str

    def configure(self, **environment: str | None) -> None:
        """Change the reconciler's environment and start a new container (keeping clients)."""
        for name, value in environment.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        reconciler.reset_state(keep_clients=True)

    def put_secrets(self, netlify_api_token: str | None = NETLIFY_TOKEN) -> None:
        self.aws.ssm.put_parameter(
            Name=self.parameter,
            Type="SecureString",
            Value=webhook_settings.secrets_value(TOKEN, JWS_SECRET, netlify_api_token),
            Overwrite=True,
        )
        reconciler.reset_state(keep_clients=True)

    def run(self, context: FakeContext | None = None) -> dict[str, Any]:
        summary = reconciler.handler(SCHEDULED_EVENT, context or FakeContext(remaining_ms=60_000))
        json.dumps(summary)  # JSON-able, as the runbook and the local stack show it
        return summary

    def healthy_hooks(self) -> None:
        self.netlify.hooks = [
            hook_object(f"hook-{event}", SITE_ID, event, WEBHOOK_URL, signature_secret=JWS_SECRET)
            for event in HOOK_EVENTS
        ]

    def invalidate(self, distribution_id: str, paths: list[str], created: datetime) -> str:
        """An invalidation in moto, created (as CloudFront will say) at ``created``."""
        answer = self.aws.cloudfront.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": uuid.uuid4().hex,
            },
        )
        invalidation_id = answer["Invalidation"]["Id"]
        backend = cloudfront_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for invalidation in backend.invalidations[distribution_id]:
            if invalidation.id == invalidation_id:
                # moto keeps naive UTC times (moto.core.utils.utcnow).
                invalidation.create_time = created.astimezone(UTC).replace(tzinfo=None)
        return invalidation_id

    def invalidations(self, distribution_id: str) -> list[dict]:
        listing = self.aws.cloudfront.list_invalidations(DistributionId=distribution_id)
        return [
            self.aws.cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])[
                "Invalidation"
            ]
            for item in listing["InvalidationList"].get("Items") or []
        ]

    def peek(self) -> list[dict]:
        """The queue's messages (up to 10), left visible: message id -> body, decoded."""
        messages = self.aws.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        ).get("Messages", [])
        return [{"id": m["MessageId"], "body": m["Body"]} for m in messages]

    def work(self) -> None:
        """What the event source mapping does: hand the queue's messages to the worker and
        delete the ones it did not list."""
        self.monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", self.dead_letter_url)
        worker.reset_state(keep_clients=True)
        event = sqs_event(self.aws.sqs, self.queue_url)
        answer = worker.handler(event, FakeContext())
        assert answer == {"batchItemFailures": []}
        for record in event["Records"]:
            self.aws.sqs.delete_message(
                QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"]
            )

    def metric(self, name: str) -> dict[str, float] | None:
        """Sum and SampleCount of the stack's metric over the last hour; None if never put."""
        now = datetime.now(UTC)
        points = self.aws.cloudwatch.get_metric_statistics(
            Namespace=reconciler.METRIC_NAMESPACE,
            MetricName=name,
            Dimensions=[{"Name": reconciler.METRIC_DIMENSION, "Value": self.stack}],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5),
            Period=3600 * 2,
            Statistics=["Sum", "SampleCount"],
        )["Datapoints"]
        if not points:
            return None
        return {
            "Sum": sum(p["Sum"] for p in points),
            "SampleCount": sum(p["SampleCount"] for p in points),
        }

    def metric_names(self) -> set[str]:
        listed = self.aws.cloudwatch.list_metrics(
            Namespace=reconciler.METRIC_NAMESPACE,
            Dimensions=[{"Name": reconciler.METRIC_DIMENSION, "Value": self.stack}],
        )["Metrics"]
        return {metric["MetricName"] for metric in listed}


@pytest.fixture
def site(aws: Clients, netlify: FakeNetlify, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    ids = tuple(
        aws.cloudfront.create_distribution(
            DistributionConfig={**DISTRIBUTION_CONFIG, "CallerReference": uuid.uuid4().hex}
        )["Distribution"]["Id"]
        for _ in range(2)
    )
    suffix = uuid.uuid4().hex[:10]
    queue_url = aws.sqs.create_queue(QueueName=f"invalidations-{suffix}")["QueueUrl"]
    dead_letter_url = aws.sqs.create_queue(QueueName=f"dead-{suffix}")["QueueUrl"]
    built = Site(
        aws=aws,
        netlify=netlify,
        monkeypatch=monkeypatch,
        distribution_ids=ids,
        queue_url=queue_url,
        dead_letter_url=dead_letter_url,
        parameter=f"/netlify-webhook/site-{suffix}/secrets",
        stack=f"stack-{suffix}",  # the metrics' dimension: one per test
    )
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL", raising=False)
    monkeypatch.delenv("INVALIDATION_PATHS", raising=False)
    built.put_secrets()
    built.healthy_hooks()
    built.configure(
        NETLIFY_SITE_ID=SITE_ID,
        DISTRIBUTION_IDS=",".join(ids),
        SECRETS_PARAMETER=built.parameter,
        QUEUE_URL=queue_url,
        WEBHOOK_ENDPOINT=WEBHOOK_ENDPOINT,
        STACK_NAME=built.stack,
        NETLIFY_API_URL=netlify.url,
    )
    yield built
    reconciler.reset_state(keep_clients=True)


def expected_reference(deploy_id: str, published: datetime, paths: tuple[str, ...] = ("/*",)):
    return webhook_settings.caller_reference(
        deploy_id, paths, event=reconciler.RECONCILER_EVENT, published_at=iso(published)
    )


# -- missed publishes -----------------------------------------------------------------------------


def test_a_missed_publish_is_queued_once_and_only_once_across_runs(site):
    published = minutes_ago(20)
    site.netlify.publish(DEPLOY_ID, published)
    reference = expected_reference(DEPLOY_ID, published)

    first = site.run()

    assert first["outcome"] == reconciler.FINDINGS
    assert first["publish"] == reconciler.PUBLISH_MISSED
    assert first["distributions"] == dict.fromkeys(site.distribution_ids, reconciler.QUEUED)
    assert first["missed_publishes"] == 2
    assert first["caller_reference"] == reference
    queued = site.peek()
    bodies = [json.loads(item["body"]) for item in queued]
    assert sorted(body["distribution_id"] for body in bodies) == sorted(site.distribution_ids)
    for body, item in zip(bodies, queued, strict=True):
        assert list(body) == list(MESSAGE_KEYS)
        assert body == {
            "deploy_id": DEPLOY_ID,
            "site_id": SITE_ID,
            "event": "reconciler",
            "context": "production",
            "distribution_id": body["distribution_id"],
            "paths": ["/*"],
            "caller_reference": reference,
            "received_at": body["received_at"],
        }
        assert parse_message(item["body"]).caller_reference == reference  # the worker reads it

    # Ten minutes later the worker has not got to them yet: nothing new is queued.
    second = site.run()
    assert second["distributions"] == dict.fromkeys(site.distribution_ids, reconciler.DEFERRED)
    assert second["queue_pending"] == 2
    assert second["missed_publishes"] == 0
    assert sorted(item["id"] for item in site.peek()) == sorted(item["id"] for item in queued)

    # The worker invalidates; the next runs find the publish covered and queue nothing.
    site.work()
    for distribution_id in site.distribution_ids:
        [made] = site.invalidations(distribution_id)
        assert made["InvalidationBatch"]["CallerReference"] == reference
    for _ in range(2):
        later = site.run()
        assert later["publish"] == reconciler.PUBLISH_COVERED
        assert later["distributions"] == dict.fromkeys(site.distribution_ids, reconciler.COVERED)
        assert site.peek() == []

    assert site.metric(reconciler.MISSED_PUBLISHES) == {"Sum": 2.0, "SampleCount": 4.0}


def test_a_publish_already_invalidated_is_left_alone(site):
    published = minutes_ago(30)
    site.netlify.publish(DEPLOY_ID, published)
    for distribution_id in site.distribution_ids:
        site.invalidate(distribution_id, ["/*"], published + timedelta(seconds=3))

    summary = site.run()

    assert summary["outcome"] == reconciler.OK
    assert summary["publish"] == reconciler.PUBLISH_COVERED
    assert summary["missed_publishes"] == 0
    assert site.peek() == []
    assert site.metric(reconciler.MISSED_PUBLISHES) == {"Sum": 0.0, "SampleCount": 1.0}


def test_an_invalidation_made_before_the_publish_does_not_cover_it(site):
    published = minutes_ago(30)
    site.netlify.publish(DEPLOY_ID, published)
    first, second = site.distribution_ids
    site.invalidate(first, ["/*"], published - timedelta(seconds=1))
    site.invalidate(second, ["/*"], published)  # at published_at exactly: covers

    summary = site.run()

    assert summary["distributions"] == {first: reconciler.QUEUED, second: reconciler.COVERED}
    assert [json.loads(item["body"])["distribution_id"] for item in site.peek()] == [first]


def test_an_invalidation_of_other_paths_does_not_cover_the_configured_ones(site):
    site.configure(INVALIDATION_PATHS="/index.html,/blog/*")
    published = minutes_ago(30)
    site.netlify.publish(DEPLOY_ID, published)
    first, second = site.distribution_ids
    site.invalidate(first, ["/index.html"], published + timedelta(seconds=5))
    site.invalidate(second, ["/*"], published + timedelta(seconds=5))  # covers every path

    summary = site.run()

    assert summary["distributions"] == {first: reconciler.QUEUED, second: reconciler.COVERED}
    [body] = [json.loads(item["body"]) for item in site.peek()]
    assert body["paths"] == ["/blog/*", "/index.html"]
    assert body["caller_reference"] == expected_reference(
        DEPLOY_ID, published, ("/blog/*", "/index.html")
    )


def test_a_publish_inside_the_grace_period_is_left_alone(site):
    site.netlify.publish(DEPLOY_ID, minutes_ago(5))

    summary = site.run()

    assert summary["publish"] == reconciler.PUBLISH_IN_GRACE
    assert summary["outcome"] == reconciler.OK
    assert site.peek() == []
    assert site.metric(reconciler.MISSED_PUBLISHES) == {"Sum": 0.0, "SampleCount": 1.0}


def test_a_rollback_to_an_older_deploy_is_detected(site):
    # The old deploy was published two hours ago and invalidated then; a newer one followed an
    # hour ago (invalidated too); now the old one is published again and nobody told us.
    first_publish = minutes_ago(120)
    for distribution_id in site.distribution_ids:
        site.invalidate(distribution_id, ["/*"], first_publish + timedelta(seconds=4))
        site.invalidate(distribution_id, ["/*"], minutes_ago(60))
    rollback = minutes_ago(16)
    site.netlify.publish(
        OLD_DEPLOY_ID, rollback, created_at=iso(first_publish - timedelta(minutes=3))
    )

    summary = site.run()

    assert summary["publish"] == reconciler.PUBLISH_MISSED
    assert summary["deploy_id"] == OLD_DEPLOY_ID
    bodies = [json.loads(item["body"]) for item in site.peek()]
    assert sorted(body["distribution_id"] for body in bodies) == sorted(site.distribution_ids)
    assert {body["deploy_id"] for body in bodies} == {OLD_DEPLOY_ID}
    # Its own reference: not the one its first publish would have had.
    assert {body["caller_reference"] for body in bodies} == {
        expected_reference(OLD_DEPLOY_ID, rollback)
    }
    assert expected_reference(OLD_DEPLOY_ID, rollback) != expected_reference(
        OLD_DEPLOY_ID, first_publish
    )


def test_a_site_never_published_has_nothing_to_reconcile(site):
    site.netlify.published_deploy = None

    summary = site.run()

    assert summary["publish"] == reconciler.PUBLISH_NONE
    assert summary["outcome"] == reconciler.OK
    assert site.peek() == []


def test_a_queue_that_cannot_be_read_defers_instead_of_risking_a_second_message(site):
    site.netlify.publish(DEPLOY_ID, minutes_ago(20))
    site.aws.sqs.delete_queue(QueueUrl=site.queue_url)

    summary = site.run()

    assert summary["distributions"] == dict.fromkeys(site.distribution_ids, reconciler.DEFERRED)
    assert summary["queue_pending"] is None
    assert [error["operation"] for error in summary["aws_errors"]] == ["GetQueueAttributes"]
    assert summary["outcome"] == reconciler.FINDINGS


def test_a_dead_letter_keeps_the_repair_from_being_queued_again_every_run(site):
    # A repair that ended in the dead-letter queue would end there again: wait for the operator.
    site.configure(DEAD_LETTER_QUEUE_URL=site.dead_letter_url)
    site.aws.sqs.send_message(QueueUrl=site.dead_letter_url, MessageBody="{}")
    site.netlify.publish(DEPLOY_ID, minutes_ago(20))

    summary = site.run()

    assert summary["distributions"] == dict.fromkeys(site.distribution_ids, reconciler.DEFERRED)
    assert (summary["queue_pending"], summary["dead_letters"]) == (0, 1)
    assert summary["missed_publishes"] == 0
    assert site.peek() == []  # nothing queued

    # Fixed and redriven (here: the dead letter removed): the next run queues the repair.
    site.aws.sqs.purge_queue(QueueUrl=site.dead_letter_url)
    again = site.run()
    assert again["distributions"] == dict.fromkeys(site.distribution_ids, reconciler.QUEUED)
    assert again["dead_letters"] == 0


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def _no_such_distribution(request: Any, **_: Any) -> AWSResponse | None:
    """CloudFront's 404 for ListInvalidations of MISSING_DISTRIBUTION (moto answers an empty
    list for a distribution it does not know); other requests go on to moto."""
    if f"/distribution/{MISSING_DISTRIBUTION}/" not in request.url:
        return None
    body = (
        b'<?xml version="1.0"?><ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/'
        b'2020-05-31/"><Error><Type>Sender</Type><Code>NoSuchDistribution</Code><Message>The '
        b"specified distribution does not exist.</Message></Error><RequestId>r1</RequestId>"
        b"</ErrorResponse>"
    )
    return AWSResponse(request.url, 404, {"Content-Type": "text/xml"}, _Raw(body))  # type: ignore[arg-type]


MISSING_DISTRIBUTION = "E0MISSING0DIST"


def test_a_distribution_cloudfront_cannot_list_is_unknown_and_the_others_are_queued(site):
    site.netlify.publish(DEPLOY_ID, minutes_ago(20))
    first = site.distribution_ids[0]
    site.configure(DISTRIBUTION_IDS=f"{first},{MISSING_DISTRIBUTION}")
    events = reconciler.cloudfront_client().meta.events
    event_name = "before-send.cloudfront.ListInvalidations"
    events.register_first(event_name, _no_such_distribution, unique_id="test-reconciler-404")
    try:
        summary = site.run()
    finally:
        events.unregister(event_name, unique_id="test-reconciler-404")

    assert summary["distributions"] == {
        first: reconciler.QUEUED,
        MISSING_DISTRIBUTION: reconciler.UNKNOWN,
    }
    assert summary["aws_errors"] == [
        {
            "operation": "ListInvalidations",
            "error": "NoSuchDistribution",
            "distribution_id": MISSING_DISTRIBUTION,
        }
    ]
    assert [json.loads(item["body"])["distribution_id"] for item in site.peek()] == [first]


def test_a_refused_send_is_reported_and_not_counted_as_queued(site):
    site.netlify.publish(DEPLOY_ID, minutes_ago(20))
    client = reconciler.sqs_client()
    stubber = Stubber(client)
    stubber.add_response(
        "get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "0"}}
    )
    stubber.add_client_error("send_message_batch", "AccessDenied", http_status_code=403)
    with stubber:
        summary = site.run()

    assert summary["distributions"] == dict.fromkeys(site.distribution_ids, reconciler.QUEUE_FAILED)
    assert summary["missed_publishes"] == 0
    assert site.metric(reconciler.MISSED_PUBLISHES) == {"Sum": 0.0, "SampleCount": 1.0}


# -- Netlify's faults --------------------------------------------------------------------------


@pytest.fixture
def short_deadlines(monkeypatch):
    """Netlify calls that give up within a second, so slow answers cost the test little."""
    monkeypatch.setattr(
        reconciler, "NETLIFY_TIMEOUTS", Timeouts(connect_s=0.5, read_s=0.4, deadline_s=1.0)
    )


FAULTS = {
    "http_401": Fault(status=401),
    "http_404": Fault(status=404),
    "http_429": Fault(status=429),
    "http_500": Fault(status=500),
    "http_503": Fault(status=503),
    "bad_json": Fault(body=b'{"published_deploy": {"id": '),
    "bad_shape": Fault(body=b'["not", "a", "site"]'),
    "timeout": Fault(delay_s=10),
    "trickled": Fault(trickle=True),
    "dropped": Fault(drop=True),
}
KINDS = {"trickled": "timeout", "dropped": "bad_answer"}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_every_netlify_fault_on_the_site_is_survived_and_counted(site, short_deadlines, name):
    site.netlify.publish(DEPLOY_ID, minutes_ago(20))
    site.netlify.fail(GET_SITE, FAULTS[name])

    summary = site.run()

    assert summary["netlify_errors"] == [{"operation": GET_SITE, "error": KINDS.get(name, name)}]
    assert summary["netlify_api_errors"] == 1
    assert summary["publish"] == reconciler.PUBLISH_UNKNOWN
    assert summary["outcome"] == reconciler.FINDINGS
    assert site.peek() == []
    assert site.metric(reconciler.NETLIFY_API_ERRORS) == {"Sum": 1.0, "SampleCount": 1.0}
    # The hooks were still read and reported.
    assert site.metric(reconciler.UNHEALTHY_HOOKS) == {"Sum": 0.0, "SampleCount": 1.0}

    # The next run tries again, and finds the missed publish.
    site.netlify.fail(GET_SITE, None)
    assert site.run()["missed_publishes"] == 2


def test_a_wrong_token_is_a_401_counted_for_both_calls(site):
    site.netlify.token = "nfp_the-token-netlify-expects-now"

    summary = site.run()

    assert summary["netlify_errors"] == [
        {"operation": GET_SITE, "error": "http_401"},
        {"operation": LIST_HOOKS, "error": "http_401"},
    ]
    assert site.metric(reconciler.NETLIFY_API_ERRORS) == {"Sum": 2.0, "SampleCount": 1.0}
    # An unknown hook count is not published as zero (it would clear the alarm).
    assert site.metric_names() == {reconciler.MISSED_PUBLISHES, reconciler.NETLIFY_API_ERRORS}


@pytest.mark.parametrize("name", ["http_500", "bad_json", "bad_shape", "timeout"])
def test_a_netlify_fault_on_the_hooks_leaves_their_count_unknown(site, short_deadlines, name):
    fault = Fault(body=b'{"hooks": []}') if name == "bad_shape" else FAULTS[name]
    site.netlify.fail(LIST_HOOKS, fault)

    summary = site.run()

    assert summary["netlify_errors"] == [{"operation": LIST_HOOKS, "error": name}]
    assert summary["hooks"] is None and summary["unhealthy_hooks"] is None
    assert site.metric_names() == {reconciler.MISSED_PUBLISHES, reconciler.NETLIFY_API_ERRORS}
    assert site.metric(reconciler.NETLIFY_API_ERRORS) == {"Sum": 1.0, "SampleCount": 1.0}


def test_an_unreachable_netlify_is_counted(site, short_deadlines):
    closed = FakeNetlify(site_id=SITE_ID, token=NETLIFY_TOKEN)
    url = closed.url
    closed.stop()  # nothing listens there any more
    site.configure(NETLIFY_API_URL=url)

    summary = site.run()

    assert [error["error"] for error in summary["netlify_errors"]] == ["unreachable"] * 2
    assert site.metric(reconciler.NETLIFY_API_ERRORS) == {"Sum": 2.0, "SampleCount": 1.0}


def test_the_reconciler_only_reads_netlify_with_its_token(site):
    site.netlify.publish(DEPLOY_ID, minutes_ago(20))

    site.run()

    made = [(r.method, r.path, r.query, r.authorization) for r in site.netlify.requests]
    assert made == [
        ("GET", f"/api/v1/sites/{SITE_ID}", {}, f"Bearer {NETLIFY_TOKEN}"),
        ("GET", "/api/v1/hooks", {"site_id": [SITE_ID]}, f"Bearer {NETLIFY_TOKEN}"),
    ]


# -- hooks ----------------------------------------------------------------------------------------


def _hooks_run(site, hooks: list[dict]) -> dict:
    site.netlify.hooks = hooks
    return site.run()


def test_both_hooks_healthy_counts_zero(site):
    summary = site.run()

    assert summary["hooks"] == dict.fromkeys(HOOK_EVENTS, netlify_api.HOOK_OK)
    assert summary["unhealthy_hooks"] == 0
    assert site.metric(reconciler.UNHEALTHY_HOOKS) == {"Sum": 0.0, "SampleCount": 1.0}


def test_a_missing_hook_is_unhealthy(site):
    summary = _hooks_run(site, [hook_object("h1", SITE_ID, "deploy_created", WEBHOOK_URL)])

    assert summary["hooks"] == {"deploy_created": "ok", "deploy_restored": "missing"}
    assert site.metric(reconciler.UNHEALTHY_HOOKS) == {"Sum": 1.0, "SampleCount": 1.0}
    assert summary["outcome"] == reconciler.FINDINGS


def test_a_disabled_hook_is_unhealthy_and_named(site):
    summary = _hooks_run(
        site,
        [
            hook_object("h1", SITE_ID, "deploy_created", WEBHOOK_URL),
            hook_object("h2", SITE_ID, "deploy_restored", WEBHOOK_URL, disabled=True),
        ],
    )

    assert summary["hooks"] == {"deploy_created": "ok", "deploy_restored": "disabled"}
    assert summary["disabled_hook_ids"] == ["h2"]
    assert site.metric(reconciler.UNHEALTHY_HOOKS) == {"Sum": 1.0, "SampleCount": 1.0}


def test_hooks_to_another_url_are_not_ours(site):
    summary = _hooks_run(
        site,
        [
            hook_object("h1", SITE_ID, "deploy_created", "https://other.example.com/netlify"),
            hook_object("h2", SITE_ID, "deploy_restored", f"{WEBHOOK_ENDPOINT}-old?token=x"),
            hook_object("h3", SITE_ID, "deploy_created", WEBHOOK_URL, hook_type="email"),
        ],
    )

    assert summary["hooks"] == dict.fromkeys(HOOK_EVENTS, netlify_api.HOOK_MISSING)
    assert site.metric(reconciler.UNHEALTHY_HOOKS) == {"Sum": 2.0, "SampleCount": 1.0}


def test_a_hook_with_an_older_token_in_its_query_is_still_ours():
    url = "https://HOOKS.example.com:443/netlify?token=an-older-token&dist=E1"
    health = netlify_api.hook_health(
        [hook_object(f"h-{e}", SITE_ID, e, url) for e in HOOK_EVENTS], WEBHOOK_ENDPOINT
    )
    assert health.unhealthy == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/netlify",  # another port (80)
        "https://hooks.example.com:8443/netlify",
        "https://hooks.example.com/netlify/",
        "https://hooks.example.com/",
        "https://hooks.example.com:99999/netlify",  # not a URL at all
        "hooks.example.com/netlify",
    ],
)
def test_a_hook_elsewhere_on_the_host_is_not_ours(url):
    assert not netlify_api.is_our_hook(
        hook_object("h", SITE_ID, "deploy_created", url), WEBHOOK_ENDPOINT
    )


def test_an_enabled_hook_next_to_a_disabled_one_keeps_the_event_healthy():
    health = netlify_api.hook_health(
        [
            hook_object("h1", SITE_ID, "deploy_created", WEBHOOK_URL, disabled=True),
            hook_object("h2", SITE_ID, "deploy_created", WEBHOOK_URL),
        ],
        WEBHOOK_ENDPOINT,
    )
    assert health.states == {"deploy_created": "ok", "deploy_restored": "missing"}
    assert health.disabled_ids == ("h1",)
    assert health.unhealthy == 1


# -- secrets, settings, logs ----------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 1, "x", (), None))) | {
    "message",
    "asctime",
}


def everything_logged(caplog) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.extend(repr(value) for key, value in vars(record).items() if key not in _STANDARD)
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def errors(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


SECRETS = (NETLIFY_TOKEN, TOKEN, JWS_SECRET, SITE_PASSWORD, SKEW_PROTECTION_TOKEN)


def test_no_secret_reaches_the_logs_the_summary_or_the_metrics(site, caplog, short_deadlines):
    site.configure(AWS_LAMBDA_LOG_LEVEL="DEBUG")
    caplog.set_level(logging.DEBUG)  # the root logger, as Lambda's DEBUG level sets it
    site.netlify.publish(DEPLOY_ID, minutes_ago(20))
    site.netlify.hooks.append(
        hook_object("h9", SITE_ID, "deploy_created", WEBHOOK_URL, disabled=True)
    )
    summaries = [site.run()]  # a full run: SSM, Netlify, CloudFront, SQS, CloudWatch
    for fault in (Fault(status=401), Fault(body=b"{broken"), Fault(delay_s=10)):
        site.netlify.fail(GET_SITE, fault)
        summaries.append(site.run())

    # The token was sent: its absence below is not for want of using it.
    assert {r.authorization for r in site.netlify.requests} == {f"Bearer {NETLIFY_TOKEN}"}
    logged = everything_logged(caplog)
    assert logged  # the run lines and the warnings
    published = json.dumps(
        site.aws.cloudwatch.list_metrics(Namespace=reconciler.METRIC_NAMESPACE)["Metrics"]
    )
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in json.dumps(summaries)
        assert secret not in published
    assert "nfp_" not in logged


def test_a_missing_token_is_one_error_and_no_netlify_call_or_metric(site, caplog):
    site.put_secrets(netlify_api_token=None)
    caplog.set_level(logging.INFO)

    first, second = site.run(), site.run()

    for summary in (first, second):
        assert summary["outcome"] == reconciler.MISCONFIGURED
        assert summary["variable"] == "SECRETS_PARAMETER"
        assert "netlify_api_token" in summary["problem"]
    [error] = errors(caplog)  # once per container
    assert error.variable == "SECRETS_PARAMETER"  # type: ignore[attr-defined]
    assert site.netlify.requests == []
    assert site.metric_names() == set()


def test_an_unusable_token_is_refused_without_quoting_it(site, caplog):
    bad = "nfp_line\r\nX-Injected: yes"
    site.put_secrets(netlify_api_token=bad)
    caplog.set_level(logging.DEBUG)

    summary = site.run()

    assert summary["outcome"] == reconciler.MISCONFIGURED
    assert len(errors(caplog)) == 1
    assert "nfp_line" not in everything_logged(caplog) + json.dumps(summary)
    assert site.netlify.requests == []


def test_a_missing_parameter_is_misconfigured_and_logged_once(site, caplog):
    site.configure(SECRETS_PARAMETER="/netlify-webhook/no-such-site/secrets")
    caplog.set_level(logging.INFO)

    first, second = site.run(), site.run()

    assert first["outcome"] == second["outcome"] == reconciler.MISCONFIGURED
    assert "ParameterNotFound" in first["problem"]
    assert len(errors(caplog)) == 1
    assert site.metric_names() == set()


def test_a_throttled_parameter_read_is_not_kept_and_the_next_run_reads_again(site, caplog):
    caplog.set_level(logging.INFO)
    stubber = Stubber(reconciler.ssm_client())
    stubber.add_client_error("get_parameter", "ThrottlingException", http_status_code=400)
    with stubber:
        throttled = site.run()

    assert throttled["outcome"] == reconciler.SECRETS_UNAVAILABLE
    assert throttled["aws_errors"] == [
        {"operation": "GetParameter", "error": "ThrottlingException"}
    ]
    assert site.netlify.requests == []
    assert site.run()["outcome"] == reconciler.OK


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NETLIFY_SITE_ID", None),
        ("WEBHOOK_ENDPOINT", "hooks.example.com/netlify"),
        ("QUEUE_URL", "not-a-queue"),
        ("STACK_NAME", None),
        ("DISTRIBUTION_IDS", None),
        ("NETLIFY_API_URL", "ftp://api.netlify.com"),
    ],
)
def test_bad_settings_are_one_error_naming_the_variable(site, caplog, variable, value):
    site.configure(**{variable: value})
    caplog.set_level(logging.INFO)

    first, second = site.run(), site.run()

    for summary in (first, second):
        assert summary["outcome"] == reconciler.MISCONFIGURED
        assert summary["variable"] == variable
    [error] = errors(caplog)
    assert error.variable == variable  # type: ignore[attr-defined]
    assert variable in error.getMessage()
    assert site.netlify.requests == []
    assert site.metric_names() == set()


def test_an_unexpected_exception_is_logged_without_its_message(site, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError(f"something quoting {NETLIFY_TOKEN}")

    monkeypatch.setattr(netlify_api, "hook_health", broken)
    caplog.set_level(logging.INFO)

    summary = site.run()

    assert summary["outcome"] == reconciler.ERROR
    assert summary["problem"] == "unexpected RuntimeError"
    assert NETLIFY_TOKEN not in everything_logged(caplog)
    assert "reconciler.py" in errors(caplog)[0].getMessage()


def test_a_metrics_failure_is_reported_not_raised(site):
    client = reconciler.cloudwatch_client()
    stubber = Stubber(client)
    stubber.add_client_error("put_metric_data", "InternalFailure", http_status_code=500)
    with stubber:
        summary = site.run()

    assert summary["metrics_published"] is False
    assert summary["aws_errors"] == [{"operation": "PutMetricData", "error": "InternalFailure"}]
    assert summary["outcome"] == reconciler.FINDINGS


def test_too_little_time_skips_the_run_instead_of_outlasting_the_lambda(site):
    summary = site.run(FakeContext(remaining_ms=3000))

    assert summary["outcome"] == reconciler.OUT_OF_TIME
    assert summary["skipped"] == ["GetParameter"]
    assert site.netlify.requests == []


# -- decisions (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "wanted", "covered"),
    [
        (["/*"], ("/index.html", "/blog/*"), True),
        (["/blog/*"], ("/blog/*",), True),
        (["/bl*"], ("/blog/post.html",), True),
        (["/blog/*"], ("/*",), False),
        (["/index.html"], ("/index.html", "/about.html"), False),
        (["/index.html", "/about.html"], ("/about.html", "/index.html"), True),
        ([], ("/*",), False),
    ],
)
def test_an_invalidation_covers_the_paths_it_or_its_wildcards_include(given, wanted, covered):
    assert reconciler.covers(given, wanted) is covered


def test_the_grace_period_is_fifteen_minutes():
    now = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert reconciler.in_grace(now - timedelta(minutes=14, seconds=59), now)
    assert not reconciler.in_grace(now - timedelta(minutes=15), now)
    assert reconciler.in_grace(now + timedelta(minutes=1), now)  # Netlify's clock ahead


def test_the_reference_is_one_per_publish():
    published = "2026-11-28T09:15:00.000Z"
    deploy = netlify_api.published_deploy(
        {"published_deploy": {"id": DEPLOY_ID, "published_at": published}}
    )
    assert deploy is not None
    again = netlify_api.published_deploy(
        {"published_deploy": {"id": DEPLOY_ID, "published_at": published, "updated_at": "x"}}
    )
    assert again is not None
    later = netlify_api.published_deploy(
        {"published_deploy": {"id": DEPLOY_ID, "published_at": "2026-11-28T11:00:00.000Z"}}
    )
    assert later is not None
    reference = reconciler.reconciler_reference(deploy, ("/*",))
    assert reference.startswith(webhook_settings.reference_prefix(DEPLOY_ID))
    assert reconciler.reconciler_reference(again, ("/*",)) == reference
    assert reconciler.reconciler_reference(later, ("/*",)) != reference
    # Never an ingest's reference for the same publish.
    assert reference != webhook_settings.caller_reference(
        DEPLOY_ID, ("/*",), event="deploy_created", published_at=published
    )


@pytest.mark.parametrize(
    "site_document",
    [
        [],
        {"published_deploy": "6566f3c2"},
        {"published_deploy": {"published_at": "2026-11-28T09:15:00Z"}},
        {"published_deploy": {"id": DEPLOY_ID}},
        {"published_deploy": {"id": DEPLOY_ID, "published_at": "yesterday"}},
        {"published_deploy": {"id": DEPLOY_ID, "published_at": "2026-11-28T09:15:00Z" + " " * 60}},
    ],
)
def test_an_answer_that_is_not_a_published_site_is_a_bad_shape(site_document):
    with pytest.raises(netlify_api.NetlifyApiError, match="bad_shape"):
        netlify_api.published_deploy(site_document)


def test_netlify_times_are_read_as_utc():
    assert netlify_api.parse_time("2026-11-28T09:15:00.123Z") == datetime(
        2026, 11, 28, 9, 15, 0, 123000, tzinfo=UTC
    )
    assert netlify_api.parse_time("2026-11-28T10:15:00+01:00") == datetime(
        2026, 11, 28, 9, 15, tzinfo=UTC
    )
    assert netlify_api.parse_time("2026-11-28T09:15:00") == datetime(
        2026, 11, 28, 9, 15, tzinfo=UTC
    )
    assert netlify_api.parse_time(None) is None


def test_neither_the_client_nor_the_container_state_shows_the_token(monkeypatch):
    client = netlify_api.NetlifyClient("https://api.netlify.com/api/v1", NETLIFY_TOKEN)
    monkeypatch.setattr(reconciler._state, "token", NETLIFY_TOKEN)
    assert NETLIFY_TOKEN not in repr(client)
    assert NETLIFY_TOKEN not in repr(reconciler._state)
