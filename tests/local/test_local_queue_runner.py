"""The event source mapping stand-in, with a recording worker: events, deletions, the clock.

This module starts its own stack (one per process at a time), whose runner only moves when a
test drives it.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from function import webhook_settings
from infra import pipeline
from local.queue_runner import BadBatchResponse, lambda_message_attribute, listed_failures
from local.stack import LocalStack
from tests.local.local_helpers import (
    TEST_JWS_SECRET,
    TEST_TOKEN,
    RecordingFunction,
    RecordingWorker,
)


@pytest.fixture(scope="module")
def worker() -> RecordingWorker:
    return RecordingWorker()


@pytest.fixture(scope="module")
def local(worker):
    with LocalStack.start(
        "dev",
        webhook_token=TEST_TOKEN,
        jws_secret=TEST_JWS_SECRET,
        invoke=RecordingFunction(),
        worker_invoke=worker,
        poll_queue=False,
    ) as stack:
        yield stack


@pytest.fixture(autouse=True)
def empty_queues(local, worker):
    """Each test starts with empty queues, nothing scheduled and a worker that processes all.

    (SQS allows one PurgeQueue a minute: the runner itself empties the queue instead.)
    """
    yield
    worker.answer = worker.all_processed
    local.runner.run_until_idle()
    sqs = local.client("sqs")
    while messages := sqs.receive_message(
        QueueUrl=local.dead_letter_queue_url, MaxNumberOfMessages=10
    ).get("Messages"):
        for message in messages:
            sqs.delete_message(
                QueueUrl=local.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def _send(local, *bodies: str, **kwargs) -> list[str]:
    sqs = local.client("sqs")
    return [
        sqs.send_message(QueueUrl=local.queue_url, MessageBody=body, **kwargs)["MessageId"]
        for body in bodies
    ]


def _counts(local, url: str | None = None) -> tuple[int, int]:
    """(visible, in flight) messages of the queue, as SQS counts them."""
    attributes = local.client("sqs").get_queue_attributes(
        QueueUrl=url or local.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _list(*message_ids: str):
    def answer(event: dict) -> dict:
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if record["messageId"] in message_ids
            ]
        }

    return answer


# -- the event ---------------------------------------------------------------------------------


def test_a_queued_message_reaches_the_worker_as_an_sqs_lambda_record(local, worker):
    body = json.dumps({"deploy_id": "d-1"})
    (message_id,) = _send(
        local,
        body,
        MessageAttributes={
            "origin": {"DataType": "String", "StringValue": "test"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    result = local.runner.poll_once()
    assert result is not None and result.message_ids == (message_id,)

    (record,) = worker.events[-1]["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["messageId"] == message_id
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()  # noqa: S324 (SQS's)
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == local.queue_arn
    assert webhook_settings.queue_url_from_arn(record["eventSourceARN"]) is not None
    assert record["awsRegion"] == local.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"]["origin"] == {
        "stringValue": "test",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01"


def test_a_record_without_message_attributes_has_no_attributes_digest(local, worker):
    _send(local, "plain")
    local.runner.poll_once()
    (record,) = worker.events[-1]["Records"]
    assert record["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in record


def test_a_batch_holds_at_most_batch_size_records(local, worker):
    sent = _send(local, *(f"m{index}" for index in range(pipeline.BATCH_SIZE + 2)))
    first = local.runner.poll_once()
    second = local.runner.poll_once()
    assert first is not None and second is not None
    assert len(first.records) == pipeline.BATCH_SIZE
    assert len(second.records) == 2
    assert sorted(first.message_ids + second.message_ids) == sorted(sent)
    assert local.runner.poll_once() is None
    assert _counts(local) == (0, 0)


# -- what is deleted ---------------------------------------------------------------------------


def test_processed_records_are_deleted_and_listed_ones_stay(local, worker):
    first, listed, last = _send(local, "a", "b", "c")
    worker.answer = _list(listed)
    result = local.runner.poll_once()
    assert result is not None
    assert result.listed == (listed,)
    assert sorted(result.deleted) == sorted([first, last])
    assert _counts(local) == (0, 1)  # only the listed one is left, in flight

    worker.answer = worker.all_processed
    local.runner.advance()
    again = local.runner.poll_once()
    assert again is not None and again.message_ids == (listed,)
    assert again.records[0].receive_count == 2
    assert _counts(local) == (0, 0)


def test_a_worker_exception_fails_the_whole_batch(local, worker):
    _send(local, "a", "b")

    def crash(event: dict) -> object:
        raise RuntimeError("bug in the worker")

    worker.answer = crash
    result = local.runner.poll_once()
    assert result is not None
    assert result.error == "function error: RuntimeError"
    assert result.deleted == ()
    assert _counts(local) == (0, 2)


@pytest.mark.parametrize(
    "answer",
    [
        lambda event: {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        lambda event: {"batchItemFailures": [{"itemIdentifier": ""}]},
        lambda event: {"batchItemFailures": [{"messageId": event["Records"][0]["messageId"]}]},
        lambda event: {"batchItemFailures": "everything"},
        lambda event: {"batchItemFailures": [], "extra": {1, 2}},  # not JSON
        lambda event: ["not", "an", "object"],
    ],
    ids=["unknown-id", "empty-id", "bad-key", "not-a-list", "not-json", "not-an-object"],
)
def test_an_answer_lambda_cannot_read_fails_the_whole_batch(local, worker, answer):
    _send(local, "a", "b")
    worker.answer = answer
    result = local.runner.poll_once()
    assert result is not None
    assert result.error is not None and result.error.startswith("invalid response")
    assert result.deleted == ()
    assert _counts(local) == (0, 2)


@pytest.mark.parametrize(
    "answer",
    [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}],
    ids=["null", "empty-object", "null-list", "empty-list"],
)
def test_an_answer_without_failures_deletes_the_whole_batch(local, worker, answer):
    _send(local, "a", "b")
    worker.answer = lambda event: answer
    result = local.runner.poll_once()
    assert result is not None and result.error is None
    assert len(result.deleted) == 2
    assert _counts(local) == (0, 0)


def test_listed_failures_reads_identifiers_in_order_once():
    answer = {"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "a"}] * 2}
    assert listed_failures(answer, ["a", "b", "c"]) == ["b", "a"]
    with pytest.raises(BadBatchResponse, match="not a message of the batch"):
        listed_failures({"batchItemFailures": [{"itemIdentifier": "z"}]}, ["a"])


def test_binary_list_attributes_are_base64_in_the_event():
    attribute = lambda_message_attribute(
        {"DataType": "Binary", "BinaryListValues": [b"\x01", b"\x02"]}
    )
    assert attribute["binaryListValues"] == ["AQ==", "Ag=="]


# -- the simulated clock -----------------------------------------------------------------------


def test_the_visibility_the_worker_sets_schedules_the_next_delivery(local, worker):
    (message_id,) = _send(local, "later")

    def retry_in_45_s(event: dict) -> dict:
        record = event["Records"][0]
        local.client("sqs").change_message_visibility(
            QueueUrl=local.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=45
        )
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}

    worker.answer = retry_in_45_s
    result = local.runner.poll_once()
    assert result is not None
    assert result.visibility_s == {message_id: 45}
    assert local.runner.scheduled == {message_id: result.at_s + 45}
    assert local.runner.poll_once() is None  # SQS keeps it invisible meanwhile

    worker.answer = worker.all_processed
    assert local.runner.advance() == result.at_s + 45
    assert local.runner.clock.now() == result.at_s + 45
    again = local.runner.poll_once()
    assert again is not None and again.records[0].receive_count == 2
    assert local.runner.scheduled == {}


def test_a_listed_record_without_a_new_visibility_comes_back_after_the_queues_timeout(
    local, worker
):
    (message_id,) = _send(local, "default")
    worker.answer = _list(message_id)
    result = local.runner.poll_once()
    assert result is not None and result.visibility_s == {}
    worker.answer = worker.all_processed
    expected = result.at_s + pipeline.QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert local.runner.advance() == expected


def test_sqs_moves_a_message_listed_max_receive_count_times_to_the_dead_letter_queue(local, worker):
    (message_id,) = _send(local, "never")
    worker.answer = _list(message_id)
    results = local.runner.run_until_idle()
    assert [r.records[0].receive_count for r in results] == list(
        range(1, pipeline.MAX_RECEIVE_COUNT + 1)
    )
    assert _counts(local) == (0, 0)
    moved = local.client("sqs").receive_message(
        QueueUrl=local.dead_letter_queue_url, AttributeNames=["All"]
    )["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in moved] == [(message_id, "never")]


# -- the worker's context, environment and logs -------------------------------------------------


def test_the_worker_runs_with_its_own_context_and_both_settings_in_the_environment(local, worker):
    _send(local, "ctx")
    local.runner.poll_once()
    context = worker.contexts[-1]
    assert context.function_name == local.worker_function_name
    assert context.log_group_name == local.worker_log_group_name
    assert context.memory_limit_in_mb == pipeline.WORKER_MEMORY_MB
    assert context.invoked_function_arn.endswith(f":function:{local.worker_function_name}")
    assert 0 < context.get_remaining_time_in_millis() <= pipeline.WORKER_TIMEOUT_SECONDS * 1000

    environment = worker.environments[-1]
    # Lambda's own variables are the worker's while it runs, not the ingest's.
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == local.worker_function_name
    assert environment["AWS_LAMBDA_LOG_GROUP_NAME"] == local.worker_log_group_name
    settings = webhook_settings.load_worker_settings(environment)
    assert settings.dead_letter_queue_url == local.dead_letter_queue_url
    assert settings.distribution_ids == local.distribution_ids
    assert webhook_settings.load_settings(environment).queue_url == local.queue_url


def test_the_workers_logs_land_in_the_worker_log_group(local, worker):
    _send(local, "logs")
    local.runner.poll_once()
    request_id = worker.contexts[-1].aws_request_id
    logs = local.client("logs")

    def entries(group: str) -> list[dict]:
        found = []
        for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])[
                "events"
            ]
            found += [json.loads(event["message"]) for event in events]
        return found

    mine = [e for e in entries(local.worker_log_group_name) if e.get("requestId") == request_id]
    assert [(e["logger"], e["message"], e["records"]) for e in mine] == [("worker", "batch", 1)]
    reports = [
        e for e in entries(local.worker_log_group_name) if e.get("type") == "platform.report"
    ]
    assert request_id in {e["record"]["requestId"] for e in reports}
    ingest = entries(local.log_group_name)
    assert all(e.get("requestId") != request_id for e in ingest)
    assert all(request_id != e.get("record", {}).get("requestId") for e in ingest)
