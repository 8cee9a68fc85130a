"""End to end on moto: Netlify -> ALB stand-in -> ingest -> SQS -> runner -> worker -> CloudFront.

A stack with two distributions (so every deploy is two messages), the real ingest and the real
worker, and a queue that moves only when a test drives the runner: its simulated clock lets
CloudFront refuse for half an hour, or hours of retries reach the dead-letter queue, in
milliseconds. CloudFront's refusals are injected into moto (``local.faults``), so the worker
meets them as HTTP errors through its own client.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from function.invalidation_message import MESSAGE_KEYS
from function.webhook_settings import caller_reference, reference_prefix
from infra import pipeline
from infra.stack_files import PROJECT_DIR
from local.faults import cloudfront_refusing
from local.queue_runner import BatchResult
from local.stack import LocalStack
from tests.local.local_helpers import (
    TEST_JWS_SECRET,
    TEST_TOKEN,
    deploy_body,
    request,
    signed_headers,
)

STACK = "pipeline"
DISTRIBUTION_IDS = ["E2EXAMPLE1ABCD", "E3EXAMPLE2WXYZ"]
HALF_AN_HOUR_S = 30 * 60


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory) -> Path:
    """dev's config with a second distribution, next to the project's Pulumi.yaml."""
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", folder / "Pulumi.yaml")
    config = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    config["config"]["netlify-cloudfront-webhook:distributionIds"] = DISTRIBUTION_IDS
    (folder / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.fixture(scope="module")
def local(project_dir):
    with LocalStack.start(
        STACK,
        project_dir=project_dir,
        webhook_token=TEST_TOKEN,
        jws_secret=TEST_JWS_SECRET,
        poll_queue=False,
    ) as stack:
        assert list(stack.distribution_ids) == DISTRIBUTION_IDS
        yield stack


_deploys = iter(range(1, 1000))


def _notify(local) -> tuple[str, dict]:
    """A signed deploy notification through the ALB stand-in; returns (deploy id, answer)."""
    deploy_id = f"{next(_deploys):024x}"
    body = deploy_body(local.settings.netlify_site_id, deploy_id)
    status, _, _, answer = request(local, body=body, headers=signed_headers(body))
    assert status == 202, answer
    return deploy_id, json.loads(answer)


def _depth(local, url: str) -> int:
    """Messages in the queue: visible, in flight and delayed."""
    attributes = local.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return sum(
        int(attributes[name])
        for name in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def _invalidations(local, deploy_id: str) -> dict[str, list[dict]]:
    """Distribution -> the invalidation batches CloudFront holds for this deploy (by the prefix
    every caller reference of the deploy starts with: the digest covers the event and times)."""
    prefix = reference_prefix(deploy_id)
    cloudfront = local.client("cloudfront")
    found: dict[str, list[dict]] = {}
    for dist_id in local.distribution_ids:
        listed = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]
        batches = [
            cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"]
            for item in listed.get("Items") or []
        ]
        found[dist_id] = [
            batch
            for batch in batches
            if batch["InvalidationBatch"]["CallerReference"].startswith(prefix)
        ]
    return found


def _take_dead_letters(local) -> list[dict]:
    """Every message of the dead-letter queue, deleted once read (tests share the queue)."""
    sqs = local.client("sqs")
    taken: list[dict] = []
    for _ in range(20):  # bounded: the tests put a handful of messages there
        messages = sqs.receive_message(
            QueueUrl=local.dead_letter_queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            sqs.delete_message(
                QueueUrl=local.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        taken += messages
    return taken


def _bodies_of(deploy_id: str, messages: list[dict]) -> dict[str, dict]:
    """Distribution -> body, for this deploy's messages."""
    bodies = [json.loads(message["Body"]) for message in messages]
    return {body["distribution_id"]: body for body in bodies if body["deploy_id"] == deploy_id}


def _backoff_ceiling_s(receive_count: int) -> int:
    return min(900, 30 * 2 ** (receive_count - 1))


def _worker_visibility_requests(results: list[BatchResult]) -> list[tuple[int, int]]:
    """(receive count, visibility timeout the worker set) of every listed record, in order."""
    requests = []
    for result in results:
        counts = {record.message_id: record.receive_count for record in result.records}
        for message_id in result.listed:
            requests.append((counts[message_id], result.visibility_s.get(message_id, -1)))
    return requests


@pytest.fixture(autouse=True)
def quiet_pipeline(local):
    """Every test starts and ends with both queues empty."""
    assert _depth(local, local.queue_url) == 0
    yield
    _take_dead_letters(local)


def test_a_notification_is_queued_with_the_exact_body_then_invalidated_once(local):
    deploy_id, answer = _notify(local)
    assert answer["status"] == "queued"
    queued = {item["distribution_id"]: item for item in answer["invalidations"]}
    assert sorted(queued) == DISTRIBUTION_IDS
    assert _depth(local, local.queue_url) == len(DISTRIBUTION_IDS)

    results = local.runner.run_until_idle()
    received = [record for result in results for record in result.records]
    paths = sorted(set(local.settings.invalidation_paths))
    # The notification's event, and no published_at/updated_at in the test deploy's body.
    reference = caller_reference(
        deploy_id, local.settings.invalidation_paths, event="deploy_created"
    )
    for record in received:
        body = json.loads(record.body)
        assert set(body) == set(MESSAGE_KEYS)
        dist_id = body["distribution_id"]
        assert record.message_id == queued[dist_id]["message_id"]
        assert body == {
            "deploy_id": deploy_id,
            "site_id": local.settings.netlify_site_id,
            "event": "deploy_created",
            "context": "production",
            "distribution_id": dist_id,
            "paths": paths,
            "caller_reference": reference,
            "received_at": body["received_at"],
        }
        assert datetime.fromisoformat(body["received_at"].replace("Z", "+00:00")).tzinfo
    assert sorted(json.loads(r.body)["distribution_id"] for r in received) == DISTRIBUTION_IDS

    found = _invalidations(local, deploy_id)
    assert {dist_id: len(batches) for dist_id, batches in found.items()} == {
        dist_id: 1 for dist_id in DISTRIBUTION_IDS
    }
    for batches in found.values():
        assert sorted(batches[0]["InvalidationBatch"]["Paths"]["Items"]) == paths
    assert _depth(local, local.queue_url) == 0
    assert _take_dead_letters(local) == []


def test_the_worker_logs_the_invalidation_id_in_its_own_log_group(local):
    deploy_id, _ = _notify(local)
    local.runner.run_until_idle()
    ids = {batches[0]["Id"] for batches in _invalidations(local, deploy_id).values()}
    logs = local.client("logs")
    text = ""
    for stream in logs.describe_log_streams(logGroupName=local.worker_log_group_name)["logStreams"]:
        events = logs.get_log_events(
            logGroupName=local.worker_log_group_name, logStreamName=stream["logStreamName"]
        )["events"]
        text += "\n".join(event["message"] for event in events)
    assert ids and all(invalidation_id in text for invalidation_id in ids)


def test_cloudfront_busy_for_half_an_hour_still_gives_one_invalidation_per_distribution(local):
    runner = local.runner
    started = runner.clock.now()
    with cloudfront_refusing(
        "TooManyInvalidationsInProgress", when=lambda: runner.clock.now() - started < HALF_AN_HOUR_S
    ) as cloudfront:
        deploy_id, _ = _notify(local)
        results = runner.run_until_idle()

    found = _invalidations(local, deploy_id)
    assert {dist_id: len(batches) for dist_id, batches in found.items()} == {
        dist_id: 1 for dist_id in DISTRIBUTION_IDS
    }
    assert _depth(local, local.queue_url) == 0
    assert _take_dead_letters(local) == []

    # CloudFront refused every attempt of the first half hour and accepted one per distribution.
    assert sorted(dist_id for dist_id, _ in cloudfront.accepted) == DISTRIBUTION_IDS
    for dist_id in DISTRIBUTION_IDS:
        refused = [ref for refused_id, ref in cloudfront.refused if refused_id == dist_id]
        assert len(refused) >= 6  # 30 + 60 + ... + 900 s of backoff, jitter at most 20 % shorter
    finished = runner.clock.now() - started
    assert HALF_AN_HOUR_S <= finished < HALF_AN_HOUR_S + 900

    # Every retry was pushed back by the worker's backoff for its receive count.
    requests = _worker_visibility_requests(results)
    assert len(requests) == len(cloudfront.refused)
    for receive_count, seconds in requests:
        ceiling = _backoff_ceiling_s(receive_count)
        assert ceiling - ceiling * 20 // 100 <= seconds <= ceiling, (receive_count, seconds)
    assert max(count for count, _ in requests) < pipeline.MAX_RECEIVE_COUNT


def test_a_permanent_refusal_sends_the_message_to_the_dead_letter_queue(local):
    with cloudfront_refusing("AccessDenied") as cloudfront:
        deploy_id, _ = _notify(local)
        results = local.runner.run_until_idle()

    assert len(cloudfront.refused) == len(DISTRIBUTION_IDS)  # tried once each, never again
    assert all(not result.listed for result in results)
    assert _depth(local, local.queue_url) == 0
    assert _invalidations(local, deploy_id) == {dist_id: [] for dist_id in DISTRIBUTION_IDS}

    received = {json.loads(r.body)["distribution_id"]: r.body for x in results for r in x.records}
    dead = _take_dead_letters(local)
    assert sorted(_bodies_of(deploy_id, dead)) == DISTRIBUTION_IDS
    for message in dead:
        body = json.loads(message["Body"])
        assert message["Body"] == received[body["distribution_id"]]  # the original body
        assert message["MessageAttributes"]["error_code"]["DataType"] == "String"
        assert message["MessageAttributes"]["error_code"]["StringValue"] == "AccessDenied"


def test_transient_failures_for_hours_end_in_the_dead_letter_queue_by_redrive(local):
    runner = local.runner
    started = runner.clock.now()
    with cloudfront_refusing("TooManyInvalidationsInProgress") as cloudfront:
        deploy_id, answer = _notify(local)
        results = runner.run_until_idle()

    message_ids = {item["message_id"] for item in answer["invalidations"]}
    receives = [record for result in results for record in result.records]
    for message_id in message_ids:
        counts = [r.receive_count for r in receives if r.message_id == message_id]
        assert counts == list(range(1, pipeline.MAX_RECEIVE_COUNT + 1))
    assert len(cloudfront.refused) == pipeline.MAX_RECEIVE_COUNT * len(DISTRIBUTION_IDS)
    assert cloudfront.accepted == []
    # The retries span what the program promises: between one and four hours.
    span_s = runner.clock.now() - started
    assert 3600 <= span_s <= 4 * 3600

    assert _depth(local, local.queue_url) == 0
    dead = _take_dead_letters(local)
    assert {message["MessageId"] for message in dead} == message_ids
    assert sorted(_bodies_of(deploy_id, dead)) == DISTRIBUTION_IDS
    # Moved by SQS's redrive policy, not sent by the worker: no error_code attribute.
    assert all("error_code" not in message.get("MessageAttributes", {}) for message in dead)
