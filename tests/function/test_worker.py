"""The worker (``function.worker``): queued messages -> CloudFront invalidations, on moto.

Records are real messages received from a moto queue (``worker_testkit.sqs_event``), so their
receipt handles, receive counts and ARNs are the queue's own. The tests assert on what moto
holds afterwards: the invalidation and its paths and CallerReference, the message's visibility
in the queue, the dead-letter queue's messages and their attributes. Faults are injected with
botocore's Stubber, hooks on the worker's real client, or a client wrapper.

Records are received with VisibilityTimeout=0, so a message the worker did not push back is
visible again at once: "receive_message finds nothing" then means its visibility was changed.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from function import lambda_logging, webhook_settings, worker
from function.invalidation_message import MESSAGE_KEYS
from tests.function.function_testkit import DISTRIBUTION_CONFIG, FakeContext
from tests.function.worker_testkit import (
    DEPLOY_ID,
    MotoSqsClock,
    dead_letters,
    listed,
    message_body,
    queue_arn,
    receive,
    send,
    sqs_event,
)

CEILINGS = [30, 60, 120, 240, 480, 900, 900, 900, 900, 900, 900, 900]  # n = 1..12


@pytest.fixture(scope="module")
def aws_clients() -> Iterator[tuple[Any, Any]]:
    """moto's AWS for this module, with the tests' own clients (made once: they are slow)."""
    with mock_aws():
        yield boto3.client("cloudfront"), boto3.client("sqs", region_name="us-east-1")
        worker.reset_state()  # no client made inside the mock outlives it


@dataclass
class Pipeline:
    """moto's CloudFront and queues as the worker sees them."""

    cloudfront: Any
    sqs: Any
    distribution_ids: tuple[str, ...]
    other_distribution_id: str  # exists in CloudFront, not in the worker's DISTRIBUTION_IDS
    queue_url: str
    dead_letter_url: str
    monkeypatch: pytest.MonkeyPatch

    def configure(self, **environment: str | None) -> None:
        """Change the worker's environment and start a new container (keeping the clients)."""
        for name, value in environment.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        worker.reset_state(keep_clients=True)

    def queue(self, *bodies: str) -> list[str]:
        return send(self.sqs, self.queue_url, *bodies)

    def event(self, max_messages: int = 10) -> dict:
        return sqs_event(self.sqs, self.queue_url, max_messages, visibility_timeout=0)

    def visible(self) -> set[str]:
        """The ids of the queue's messages a consumer could receive right now."""
        return {m["MessageId"] for m in receive(self.sqs, self.queue_url, visibility_timeout=0)}

    def invalidations(self, distribution_id: str) -> list[dict]:
        listing = self.cloudfront.list_invalidations(DistributionId=distribution_id)
        return [
            self.cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])[
                "Invalidation"
            ]
            for item in listing["InvalidationList"].get("Items", [])
        ]

    def invalidation_count(self) -> int:
        ids = (*self.distribution_ids, self.other_distribution_id)
        return sum(len(self.invalidations(d)) for d in ids)

    def dead_letters(self) -> list[dict]:
        return dead_letters(self.sqs, self.dead_letter_url)


@pytest.fixture
def pipeline(aws_clients, monkeypatch) -> Iterator[Pipeline]:
    """Three new distributions (two for the worker), a queue with its dead-letter queue and the
    worker's settings; no jitter; a fresh container for every test."""
    cloudfront, sqs = aws_clients
    ids = [
        cloudfront.create_distribution(
            DistributionConfig={**DISTRIBUTION_CONFIG, "CallerReference": uuid.uuid4().hex}
        )["Distribution"]["Id"]
        for _ in range(3)
    ]
    suffix = uuid.uuid4().hex[:12]
    dead_letter_url = sqs.create_queue(QueueName=f"dead-letters-{suffix}")["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dead_letter_url), "maxReceiveCount": "12"}
    queue_url = sqs.create_queue(
        QueueName=f"invalidations-{suffix}",
        Attributes={"VisibilityTimeout": "720", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    built = Pipeline(
        cloudfront, sqs, tuple(ids[:2]), ids[2], queue_url, dead_letter_url, monkeypatch
    )
    monkeypatch.setattr(worker, "_jitter", lambda: 0.0)
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL", raising=False)
    built.configure(
        DISTRIBUTION_IDS=",".join(built.distribution_ids), DEAD_LETTER_QUEUE_URL=dead_letter_url
    )
    yield built
    worker.reset_state(keep_clients=True)


@pytest.fixture
def context() -> FakeContext:
    return FakeContext(remaining_ms=120_000, request_id="worker-req-1")


def worker_logs(caplog: pytest.LogCaptureFixture, outcome: str | None = None) -> list:
    return [
        r
        for r in caplog.records
        if r.name == "worker" and (outcome is None or getattr(r, "outcome", None) == outcome)
    ]


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "CreateInvalidation",
    )


def expected_request(distribution_id: str, paths: tuple[str, ...] = ("/*",)) -> dict:
    """The one request the worker may make for a message of ``message_body``."""
    return {
        "DistributionId": distribution_id,
        "InvalidationBatch": {
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": webhook_settings.caller_reference(DEPLOY_ID, paths),
        },
    }


class FaultyCloudFront:
    """The worker's real client, except for the distributions given a fault."""

    def __init__(self, real: Any, faults: dict[str, BaseException | dict]) -> None:
        self.real = real
        self.faults = faults

    def create_invalidation(self, **kwargs: Any) -> Any:
        fault = self.faults.get(kwargs["DistributionId"])
        if isinstance(fault, BaseException):
            raise fault
        if isinstance(fault, dict):
            return fault  # an answer botocore parsed, however incomplete
        return self.real.create_invalidation(**kwargs)


def faulty(monkeypatch, faults: dict[str, BaseException | dict]) -> None:
    fake = FaultyCloudFront(worker.cloudfront_client(), faults)
    monkeypatch.setattr(worker, "cloudfront_client", lambda: fake)


# -- backoff (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "ceiling"), list(enumerate(CEILINGS, start=1)))
def test_backoff_doubles_from_30_s_and_stops_at_900_s(n, ceiling):
    assert worker.visibility_timeout_s(n, 0.0) == ceiling == min(900, 30 * 2 ** (n - 1))


@pytest.mark.parametrize(("n", "ceiling"), list(enumerate(CEILINGS, start=1)))
def test_full_jitter_shortens_the_backoff_by_exactly_20_percent(n, ceiling):
    assert worker.visibility_timeout_s(n, 1.0) == ceiling * 8 // 10


def test_backoff_with_jitter_just_below_one_stays_within_20_percent():
    assert worker.visibility_timeout_s(1, 0.999999) == 25  # 30 - int(6 * 0.999999)
    assert worker.visibility_timeout_s(12, 0.5) == 810


@pytest.mark.parametrize(
    ("n", "jitter", "expected"),
    [
        (0, 0.0, 30),
        (-5, 0.0, 30),
        (10**9, 0.0, 900),
        (1, -1.0, 30),
        (1, 7.0, 24),
        (1, math.nan, 30),
    ],
)
def test_backoff_clamps_counts_and_jitters_out_of_range(n, jitter, expected):
    assert worker.visibility_timeout_s(n, jitter) == expected


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=0.0, max_value=1.0))
def test_backoff_is_never_longer_than_its_ceiling_nor_shorter_than_80_percent(n, jitter):
    ceiling = min(900, 30 * 2 ** min(n - 1, 10))
    value = worker.visibility_timeout_s(n, jitter)
    assert isinstance(value, int)
    assert ceiling * 0.8 <= value <= ceiling


def test_the_jitter_seam_is_random_by_default():
    assert worker._jitter is random.random  # tests replace it; production must not


# -- the SQS event as the tests build it ---------------------------------------------------------


def test_sqs_event_is_shaped_like_an_event_source_mapping_event(pipeline):
    (sent,) = pipeline.queue(message_body(pipeline.distribution_ids[0]))
    (record,) = pipeline.event()["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["messageId"] == sent
    assert record["eventSource"] == "aws:sqs"
    assert record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == queue_arn(pipeline.sqs, pipeline.queue_url)
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    # The URL the worker derives from the ARN names the same queue.
    assert webhook_settings.queue_url_from_arn(record["eventSourceARN"]) == pipeline.queue_url


# -- success ---------------------------------------------------------------------------------------


def test_a_message_becomes_an_invalidation_with_its_exact_paths_and_reference(
    pipeline, context, caplog
):
    caplog.set_level(logging.INFO)
    dist = pipeline.distribution_ids[0]
    paths = ("/blog/*", "/index.html")
    (sent,) = pipeline.queue(message_body(dist, paths=paths))
    answer = worker.handler(pipeline.event(), context)
    assert answer == {"batchItemFailures": []}
    (invalidation,) = pipeline.invalidations(dist)
    batch = invalidation["InvalidationBatch"]
    assert batch["Paths"] == {"Quantity": 2, "Items": list(paths)}
    assert batch["CallerReference"] == webhook_settings.caller_reference(DEPLOY_ID, paths)
    (line,) = worker_logs(caplog, worker.INVALIDATED)
    assert line.levelno == logging.INFO
    assert line.invalidation_id == invalidation["Id"]
    assert line.distribution_id == dist
    assert line.deploy_id == DEPLOY_ID
    assert line.caller_reference == batch["CallerReference"]
    assert line.message_id == sent
    assert line.request_id == "worker-req-1"
    assert invalidation["Id"] in line.getMessage()


def test_a_batch_invalidates_each_message_on_its_own_distribution(pipeline, context):
    first, second = pipeline.distribution_ids
    pipeline.queue(message_body(first), message_body(second, deploy_id="6566f3c2b9a1d40008a7e1f4"))
    answer = worker.handler(pipeline.event(), context)
    assert listed(answer) == []
    assert len(pipeline.invalidations(first)) == len(pipeline.invalidations(second)) == 1


def test_an_unusable_event_source_arn_does_not_stop_the_invalidation(pipeline, context):
    dist = pipeline.distribution_ids[0]
    pipeline.queue(message_body(dist))
    event = pipeline.event()
    event["Records"][0]["eventSourceARN"] = "not-an-arn"
    assert listed(worker.handler(event, context)) == []
    assert len(pipeline.invalidations(dist)) == 1


def test_an_empty_or_odd_event_lists_nothing(pipeline, context):
    assert worker.handler({"Records": []}, context) == {"batchItemFailures": []}
    assert worker.handler({}, context) == {"batchItemFailures": []}
    assert worker.handler([], context) == {"batchItemFailures": []}  # type: ignore[arg-type]


# -- transient failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TooManyInvalidationsInProgress", 400),
        ("ServiceUnavailable", 503),
        ("InternalError", 500),
        ("Throttling", 400),
    ],
)
def test_a_transient_refusal_lists_the_record_and_pushes_it_back(
    pipeline, context, caplog, code, status
):
    caplog.set_level(logging.INFO)
    dist = pipeline.distribution_ids[0]
    (sent,) = pipeline.queue(message_body(dist))
    event = pipeline.event()
    assert pipeline.visible() == {sent}  # received with visibility 0: visible until changed
    with Stubber(worker.cloudfront_client()) as stub:
        stub.add_client_error(
            "create_invalidation",
            service_error_code=code,
            service_message=f"injected {code}",
            http_status_code=status,
            expected_params=expected_request(dist),
        )
        answer = worker.handler(event, context)
        stub.assert_no_pending_responses()
    assert listed(answer) == [sent]
    assert pipeline.visible() == set()  # its visibility was changed in SQS
    assert pipeline.dead_letters() == []
    (line,) = worker_logs(caplog, worker.RETRY_LATER)
    assert line.levelno == logging.WARNING
    assert (line.error_code, line.visibility_timeout_s, line.message_id) == (code, 30, sent)


def _refuse_connection(request: Any, **_: Any) -> None:
    raise EndpointConnectionError(endpoint_url=request.url)


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def _cut_off_answer(request: Any, **_: Any) -> AWSResponse:
    # A 201 whose XML stops mid-element, as a connection dropped mid-answer leaves it.
    body = b'<?xml version="1.0"?><Invalidation xmlns="http://cloudfront.amazonaws.com/doc/'
    return AWSResponse(request.url, 201, {"Content-Type": "text/xml"}, _Raw(body))  # type: ignore[arg-type]


@pytest.fixture
def hooked(pipeline):
    """Register a before-send hook on the worker's real CloudFront client (first in line)."""
    client = worker.cloudfront_client()
    event_name = "before-send.cloudfront.CreateInvalidation"

    def register(hook: Any) -> None:
        client.meta.events.register_first(event_name, hook, unique_id="test-worker-fault")

    yield register
    client.meta.events.unregister(event_name, unique_id="test-worker-fault")


@pytest.mark.parametrize(
    ("hook", "code"),
    [(_refuse_connection, "EndpointConnectionError"), (_cut_off_answer, "ResponseParserError")],
)
def test_a_connection_error_or_a_cut_off_answer_is_transient(
    pipeline, context, caplog, hooked, hook, code
):
    caplog.set_level(logging.INFO)
    (sent,) = pipeline.queue(message_body(pipeline.distribution_ids[0]))
    hooked(hook)
    answer = worker.handler(pipeline.event(), context)
    assert listed(answer) == [sent]
    assert pipeline.visible() == set()
    assert pipeline.dead_letters() == []
    (line,) = worker_logs(caplog, worker.RETRY_LATER)
    assert line.error_code == code


def test_an_answer_without_the_invalidation_is_transient(pipeline, context, monkeypatch):
    dist = pipeline.distribution_ids[0]
    (sent,) = pipeline.queue(message_body(dist))
    faulty(monkeypatch, {dist: {"ResponseMetadata": {"HTTPStatusCode": 201}}})
    assert listed(worker.handler(pipeline.event(), context)) == [sent]
    assert pipeline.visible() == set()


class BlockedCloudFront:
    """A client whose CreateInvalidation hangs until the test releases it (a trickling answer)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def create_invalidation(self, **_: Any) -> dict:
        self.calls += 1
        self.release.wait(30)  # bounded, in case the test never releases it
        return {"Invalidation": {"Id": "ITOOLATE"}}


def test_a_call_that_outlasts_its_deadline_is_abandoned_and_transient(
    pipeline, context, caplog, monkeypatch
):
    caplog.set_level(logging.INFO)
    (sent,) = pipeline.queue(message_body(pipeline.distribution_ids[0]))
    blocked = BlockedCloudFront()
    monkeypatch.setattr(worker, "cloudfront_client", lambda: blocked)
    # Leaves CloudFront a 0.6 s deadline: the report margin and an SQS call's deadline are kept.
    context.remaining_ms = worker.REPORT_MARGIN_MS + worker.SQS_DEADLINE_S * 1000 + 600
    try:
        answer = worker.handler(pipeline.event(), context)
    finally:
        blocked.release.set()
        for thread in threading.enumerate():
            if thread.name == "aws-CreateInvalidation":
                thread.join(5)
    assert blocked.calls == 1
    assert listed(answer) == [sent]
    assert pipeline.visible() == set()
    (line,) = worker_logs(caplog, worker.RETRY_LATER)
    assert line.error_code == "DeadlineExceeded"


def test_too_little_time_lists_the_record_without_calling_cloudfront(
    pipeline, context, caplog, monkeypatch
):
    caplog.set_level(logging.INFO)
    dist = pipeline.distribution_ids[0]
    (sent,) = pipeline.queue(message_body(dist))
    context.remaining_ms = worker.REPORT_MARGIN_MS + worker.SQS_DEADLINE_S * 1000 + 100
    assert listed(worker.handler(pipeline.event(), context)) == [sent]
    assert pipeline.invalidations(dist) == []
    # Not pushed back either: it returns after the queue's own visibility timeout.
    assert pipeline.visible() == {sent}
    assert len(worker_logs(caplog, worker.OUT_OF_TIME)) == 1


@pytest.mark.parametrize(("receives", "jitter", "seconds"), [(1, 0.0, 30), (3, 1.0, 96)])
def test_the_message_comes_back_exactly_when_the_backoff_says(
    pipeline, context, monkeypatch, receives, jitter, seconds
):
    clock = MotoSqsClock(monkeypatch)
    monkeypatch.setattr(worker, "_jitter", lambda: jitter)
    dist = pipeline.distribution_ids[0]
    (sent,) = pipeline.queue(message_body(dist))
    events = [pipeline.event() for _ in range(receives)]  # each receive counts one more
    event = events[-1]
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(receives)
    faulty(monkeypatch, {dist: client_error("TooManyInvalidationsInProgress", 400)})
    assert listed(worker.handler(event, context)) == [sent]
    clock.advance(seconds - 1)
    assert pipeline.visible() == set()
    clock.advance(2)
    (back,) = receive(pipeline.sqs, pipeline.queue_url, visibility_timeout=0)
    assert back["MessageId"] == sent
    assert back["Attributes"]["ApproximateReceiveCount"] == str(receives + 1)


def test_a_failing_visibility_change_still_lists_the_record(pipeline, context, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    dist = pipeline.distribution_ids[0]
    (sent,) = pipeline.queue(message_body(dist))
    event = pipeline.event()
    # A well-formed ARN of a queue that does not exist: ChangeMessageVisibility fails.
    event["Records"][0]["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:gone"
    faulty(monkeypatch, {dist: client_error("ServiceUnavailable", 503)})
    assert listed(worker.handler(event, context)) == [sent]
    assert pipeline.visible() == {sent}  # unchanged: back after the queue's visibility timeout
    (line,) = worker_logs(caplog, worker.RETRY_LATER)
    assert line.visibility_timeout_s is None
    assert "ChangeMessageVisibility failed" in line.visibility_problem


def test_an_unusable_event_source_arn_lists_a_transient_failure_and_says_why(
    pipeline, context, caplog, monkeypatch
):
    caplog.set_level(logging.INFO)
    dist = pipeline.distribution_ids[0]
    (sent,) = pipeline.queue(message_body(dist))
    event = pipeline.event()
    del event["Records"][0]["eventSourceARN"]
    faulty(monkeypatch, {dist: client_error("Throttling", 400)})
    assert listed(worker.handler(event, context)) == [sent]
    (line,) = worker_logs(caplog, worker.RETRY_LATER)
    assert "eventSourceARN" in line.visibility_problem


# -- permanent failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 403),
        ("InvalidationBatchAlreadyExists", 409),
        ("InvalidArgument", 400),
    ],
)
def test_a_permanent_refusal_dead_letters_the_original_body(
    pipeline, context, caplog, code, status
):
    caplog.set_level(logging.INFO)
    dist = pipeline.distribution_ids[0]
    body = message_body(dist)
    (sent,) = pipeline.queue(body)
    with Stubber(worker.cloudfront_client()) as stub:
        stub.add_client_error(
            "create_invalidation",
            service_error_code=code,
            service_message=f"injected {code}",
            http_status_code=status,
            expected_params=expected_request(dist),
        )
        answer = worker.handler(pipeline.event(), context)
        stub.assert_no_pending_responses()
    assert listed(answer) == []
    (letter,) = pipeline.dead_letters()
    assert letter["body"] == body
    assert letter["attributes"] == {
        "error_code": code,
        "error": f"injected {code}",
        "source_message_id": sent,
        "receive_count": "1",
    }
    (line,) = worker_logs(caplog, worker.DEAD_LETTERED)
    assert (line.levelno, line.error_code, line.message_id) == (logging.ERROR, code, sent)


def test_a_distribution_cloudfront_does_not_know_is_dead_lettered(pipeline, context):
    missing = "E0000000000000"  # allowed by the settings, unknown to CloudFront (moto)
    pipeline.configure(DISTRIBUTION_IDS=f"{pipeline.distribution_ids[0]},{missing}")
    body = message_body(missing)
    pipeline.queue(body)
    assert listed(worker.handler(pipeline.event(), context)) == []
    (letter,) = pipeline.dead_letters()
    assert letter["body"] == body
    assert letter["attributes"]["error_code"] == "NoSuchDistribution"


def _document(dist: str) -> dict:
    return json.loads(message_body(dist))


def _with(dist: str, **changes: Any) -> str:
    return json.dumps({**_document(dist), **changes})


def _without(dist: str, key: str) -> str:
    document = _document(dist)
    del document[key]
    return json.dumps(document)


MALFORMED = {
    "not JSON": lambda d: "this is not JSON",
    "truncated JSON": lambda d: message_body(d)[:40],
    "a JSON list": lambda d: json.dumps([_document(d)]),
    "a missing key": lambda d: _without(d, "caller_reference"),
    "an extra key": lambda d: _with(d, token="x"),
    "a relative path": lambda d: _with(d, paths=["index.html"]),
    "a wildcard inside a path": lambda d: _with(d, paths=["/a*/b"]),
    "no paths": lambda d: _with(d, paths=[]),
    "paths not a list": lambda d: _with(d, paths="/*"),
    "a repeated path": lambda d: _with(d, paths=["/a", "/a"]),
    "a bad caller reference": lambda d: _with(d, caller_reference="has spaces"),
    "an empty deploy id": lambda d: _with(d, deploy_id=""),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_message_is_dead_lettered_unchanged(pipeline, context, caplog, case):
    caplog.set_level(logging.INFO)
    body = MALFORMED[case](pipeline.distribution_ids[0])
    (sent,) = pipeline.queue(body)
    assert listed(worker.handler(pipeline.event(), context)) == []
    (letter,) = pipeline.dead_letters()
    assert letter["body"] == body
    assert letter["attributes"]["error_code"] == "MalformedMessage"
    assert letter["attributes"]["source_message_id"] == sent
    assert letter["attributes"]["error"]
    assert pipeline.invalidation_count() == 0
    (line,) = worker_logs(caplog, worker.DEAD_LETTERED)
    assert line.error_code == "MalformedMessage"


def test_a_distribution_outside_the_workers_settings_is_dead_lettered(pipeline, context):
    other = pipeline.other_distribution_id
    body = message_body(other)
    pipeline.queue(body)
    assert listed(worker.handler(pipeline.event(), context)) == []
    (letter,) = pipeline.dead_letters()
    assert letter["body"] == body
    assert letter["attributes"]["error_code"] == "DistributionNotAllowed"
    assert other in letter["attributes"]["error"]
    assert pipeline.invalidations(other) == []  # it exists, and the worker did not touch it


def test_the_dead_letter_description_is_bounded_and_printable(pipeline, context):
    body = _with(pipeline.distribution_ids[0], **{"k\u0000" + "x" * 5000: 1})
    pipeline.queue(body)
    assert listed(worker.handler(pipeline.event(), context)) == []
    (letter,) = pipeline.dead_letters()
    description = letter["attributes"]["error"]
    assert len(description) <= worker.MAX_ERROR_CHARS
    assert description.isprintable()
    assert letter["body"] == body


def test_the_message_contract_the_tests_break_is_the_real_one():
    # The malformed cases above start from a complete message: if the contract gains a key,
    # message_body must carry it, or every "malformed" case would be malformed for that reason.
    assert set(_document("E1")) == set(MESSAGE_KEYS)


@pytest.mark.parametrize("fault", ["missing queue", "throttled"])
def test_a_failing_dead_letter_send_lists_the_record(pipeline, context, caplog, monkeypatch, fault):
    caplog.set_level(logging.INFO)
    (sent,) = pipeline.queue("not JSON")
    event = pipeline.event()
    if fault == "missing queue":
        pipeline.configure(
            DEAD_LETTER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue"
        )
        answer = worker.handler(event, context)
    else:
        with Stubber(worker.sqs_client()) as stub:  # answers before botocore's retries
            stub.add_client_error("send_message", "RequestThrottled", http_status_code=403)
            answer = worker.handler(event, context)
            stub.assert_no_pending_responses()
    assert listed(answer) == [sent]
    assert pipeline.dead_letters() == []
    (line,) = worker_logs(caplog, worker.DEAD_LETTER_FAILED)
    assert line.levelno == logging.ERROR
    assert line.error_code == "MalformedMessage"


# -- batches ---------------------------------------------------------------------------------------


def test_a_mixed_batch_lists_exactly_the_transient_record(pipeline, context, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    good, busy = pipeline.distribution_ids
    malformed = "not JSON"
    ok_id, busy_id, bad_id = pipeline.queue(message_body(good), message_body(busy), malformed)
    faulty(monkeypatch, {busy: client_error("TooManyInvalidationsInProgress", 400)})
    event = pipeline.event()
    assert len(event["Records"]) == 3
    answer = worker.handler(event, context)
    assert listed(answer) == [busy_id]
    assert len(pipeline.invalidations(good)) == 1
    assert pipeline.invalidations(busy) == []
    assert [letter["body"] for letter in pipeline.dead_letters()] == [malformed]
    # Only the transient one was pushed back (the event source mapping deletes the others).
    assert pipeline.visible() == {ok_id, bad_id}
    (summary,) = worker_logs(caplog, "batch")
    assert (summary.records, summary.listed) == (3, 1)
    assert summary.count_invalidated == summary.count_dead_lettered == 1


def test_an_unexpected_exception_lists_only_its_record(pipeline, context, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    good, broken = pipeline.distribution_ids
    ok_id, broken_id = pipeline.queue(message_body(good), message_body(broken))
    faulty(monkeypatch, {broken: RuntimeError("a bug")})
    answer = worker.handler(pipeline.event(), context)
    assert listed(answer) == [broken_id]
    assert len(pipeline.invalidations(good)) == 1
    (line,) = worker_logs(caplog, worker.ERROR)
    assert line.exc_info is not None and line.message_id == broken_id
    assert ok_id not in listed(answer)


def test_a_record_without_a_message_id_does_not_stop_the_others(pipeline, context):
    dist = pipeline.distribution_ids[0]
    pipeline.queue(message_body(dist))
    event = pipeline.event()
    event["Records"].insert(0, {"body": message_body(dist)})
    event["Records"].insert(0, "not a record")
    assert listed(worker.handler(event, context)) == []
    assert len(pipeline.invalidations(dist)) == 1


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DISTRIBUTION_IDS", None),
        ("DISTRIBUTION_IDS", "E1ABC,not an id!"),
        ("DEAD_LETTER_QUEUE_URL", None),
        ("DEAD_LETTER_QUEUE_URL", "dead-letters"),
    ],
)
def test_bad_settings_list_every_record_and_log_once(pipeline, context, caplog, variable, value):
    caplog.set_level(logging.INFO)
    pipeline.configure(**{variable: value})
    sent = pipeline.queue(message_body(pipeline.distribution_ids[0]), "not JSON")
    for _ in range(2):  # two invocations of the same container
        assert sorted(listed(worker.handler(pipeline.event(), context))) == sorted(sent)
    errors = [r for r in worker_logs(caplog) if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].variable == variable and variable in errors[0].getMessage()
    assert pipeline.invalidation_count() == 0
    assert pipeline.dead_letters() == []


# -- logs ------------------------------------------------------------------------------------------


SESSION_TOKEN = "SESSION-TOKEN-must-never-be-logged-1c9e"


@pytest.fixture
def unclamped_sdk_loggers() -> Iterator[None]:
    """The SDK's loggers at NOTSET, as in a container where only the worker is imported (the
    ingest's module, imported by these tests' conftest, clamps them too); restored afterwards."""
    names = [
        n
        for n in logging.root.manager.loggerDict
        if n.partition(".")[0] in lambda_logging.SDK_LOGGERS
    ]
    saved = {n: logging.getLogger(n).level for n in {*lambda_logging.SDK_LOGGERS, *names}}
    for name in saved:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.getLogger("botocore.auth").setLevel(logging.DEBUG)  # a child lowered on purpose
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_sdk_debug_logs_stay_off_even_when_the_root_is_at_debug(
    pipeline, context, caplog, unclamped_sdk_loggers
):
    # botocore logs the canonical request at DEBUG, session token included.
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):  # botocore reads the latter first
        pipeline.monkeypatch.setenv(name, SESSION_TOKEN)
    # boto3's default session keeps the credentials it resolved first: start a new one.
    pipeline.monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    pipeline.configure(AWS_LAMBDA_LOG_LEVEL="DEBUG")
    caplog.set_level(logging.DEBUG)
    worker.reset_state()  # a new container: new clients, which pick up the token
    pipeline.queue(message_body(pipeline.distribution_ids[0]), "not JSON")
    assert listed(worker.handler(pipeline.event(), context)) == []
    assert caplog.records  # the worker's own lines are there
    assert not [r for r in caplog.records if r.name.partition(".")[0] in lambda_logging.SDK_LOGGERS]
    everything = "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in caplog.records)
    assert SESSION_TOKEN not in everything
    worker.reset_state()  # drop the clients that hold the test's token
