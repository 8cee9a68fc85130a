"""SQS and SSM faults, injected with botocore's Stubber (or a failing method) on the ingest's
own clients.

The context's clock moves only when the handler backs off, so the "until the time budget runs
out" cases take no real time. What the queue holds is read from moto.
"""

from __future__ import annotations

import json
import logging
from functools import partial

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber

from function import handler
from function.aws_calls import Budget
from tests.function.function_testkit import (
    SECRETS_PARAMETER,
    FakeContext,
    answer_body,
    reference_for,
    request,
)

REFERENCE = reference_for()


def entries(world, *indexes: int) -> dict:
    """The SendMessageBatch request for the distributions at ``indexes`` (entry ids d<index>)."""
    return {
        "QueueUrl": world.queue_url,
        "Entries": [{"Id": f"d{index}", "MessageBody": ANY} for index in indexes],
    }


def sent(*indexes: int, failed: list[dict] | None = None) -> dict:
    return {
        "Successful": [
            {"Id": f"d{i}", "MessageId": f"message-{i}", "MD5OfMessageBody": "0" * 32}
            for i in indexes
        ],
        "Failed": failed or [],
    }


def refused(index: int, code: str, sender_fault: bool) -> dict:
    return {"Id": f"d{index}", "SenderFault": sender_fault, "Code": code, "Message": "injected"}


def error(stub, world, code, status, *indexes, times=1):
    for _ in range(times):
        stub.add_client_error(
            "send_message_batch",
            service_error_code=code,
            service_message=f"injected {code}",
            http_status_code=status,
            expected_params=entries(world, *indexes),
        )


@pytest.fixture
def stubber(world):
    """The ingest's SQS client, stubbed."""
    with Stubber(handler.sqs_client()) as stub:
        yield stub


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ServiceUnavailable", 503),
        ("InternalError", 500),
        ("RequestThrottled", 403),
        ("ThrottlingException", 400),
    ],
)
def test_transient_error_then_success_answers_202(world, context, stubber, code, status):
    error(stubber, world, code, status, 0, 1)
    stubber.add_response("send_message_batch", sent(0, 1), entries(world, 0, 1))
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert response["statusCode"] == 202, body
    assert [item["message_id"] for item in body["invalidations"]] == ["message-0", "message-1"]
    assert len(context.sleeps) == 1  # one backoff between the two attempts
    stubber.assert_no_pending_responses()


def test_only_the_entries_that_failed_are_sent_again(world, context, stubber):
    failed = [refused(1, "InternalError", sender_fault=False)]
    stubber.add_response("send_message_batch", sent(0, failed=failed), entries(world, 0, 1))
    stubber.add_response("send_message_batch", sent(1), entries(world, 1))  # d1 alone
    response = handler.handler(request(), context)
    assert response["statusCode"] == 202
    stubber.assert_no_pending_responses()


def test_throttled_until_the_budget_runs_out_answers_503_listing_what_was_queued(
    world, stubber, monkeypatch
):
    context = FakeContext(remaining_ms=10_000)
    monkeypatch.setattr(handler, "_sleep", context.sleep)
    monkeypatch.setattr(handler, "_jitter", lambda: 1.0)
    failed = [refused(1, "RequestThrottled", sender_fault=False)]
    stubber.add_response("send_message_batch", sent(0, failed=failed), entries(world, 0, 1))
    error(stubber, world, "RequestThrottled", 403, 1, times=50)
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == str(handler.RETRY_AFTER_TRANSIENT_S)
    first, second = world.distribution_ids
    items = {item["distribution_id"]: item for item in body["invalidations"]}
    assert items[first]["message_id"] == "message-0" and "error" not in items[first]
    assert items[second]["message_id"] is None and items[second]["error"] == "RequestThrottled"
    assert "redelivering the notification is safe" in body["reason"]
    assert context.remaining_ms >= handler.RESERVE_MS  # stopped with time left to answer


def test_no_time_left_answers_503_without_calling_sqs(world, stubber, monkeypatch):
    handler._secrets(SECRETS_PARAMETER, Budget(FakeContext()))  # fetched while there was time
    context = FakeContext(remaining_ms=handler.RESERVE_MS - 1)
    response = handler.handler(request(), context)  # the stubber has nothing queued
    body = answer_body(response)
    assert response["statusCode"] == 503
    assert {item["error"] for item in body["invalidations"]} == {"OutOfTime"}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AWS.SimpleQueueService.NonExistentQueue", 400),
        ("QueueDoesNotExist", 400),
        ("AccessDenied", 403),
        ("KMS.AccessDeniedException", 400),
    ],
)
def test_a_missing_or_forbidden_queue_answers_500_naming_queue_url(
    world, context, stubber, code, status
):
    error(stubber, world, code, status, 0, 1)
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert response["statusCode"] == 500
    assert body["variable"] == "QUEUE_URL"
    assert "QUEUE_URL" in body["reason"] and code in body["reason"]
    assert context.sleeps == []  # no retry: the queue will not appear by itself


def test_an_entry_refused_by_the_sender_answers_500(world, context, stubber):
    failed = [refused(0, "InvalidMessageContents", sender_fault=True)]
    stubber.add_response("send_message_batch", sent(1, failed=failed), entries(world, 0, 1))
    response = handler.handler(request(), context)
    assert response["statusCode"] == 500
    assert answer_body(response)["variable"] == "QUEUE_URL"


def test_a_connection_error_is_retried_and_the_messages_reach_the_queue(
    world, context, monkeypatch
):
    client = handler.sqs_client()
    real_send = client.send_message_batch
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")
        return real_send(**kwargs)

    monkeypatch.setattr(client, "send_message_batch", flaky)
    response = handler.handler(request(), context)
    assert response["statusCode"] == 202
    assert len(calls) == 2
    assert {m["distribution_id"] for m in world.queued()} == set(world.distribution_ids)


def test_more_than_ten_distributions_are_sent_in_batches_of_ten(world, context):
    ids = [f"E{index:02d}MANY" for index in range(23)]
    world.configure(DISTRIBUTION_IDS=",".join(ids))
    client = handler.sqs_client()
    sizes = []
    client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: sizes.append(len(params["Entries"])),
    )
    response = handler.handler(request(), context)
    assert response["statusCode"] == 202
    assert sizes == [10, 10, 3]
    assert sorted(m["distribution_id"] for m in world.queued()) == sorted(ids)


def test_redelivery_after_503_reuses_the_reference(world, context, monkeypatch):
    with Stubber(handler.sqs_client()) as stub:
        error(stub, world, "ServiceUnavailable", 503, 0, 1, times=50)
        short = FakeContext(remaining_ms=handler.RESERVE_MS + 1_000)
        monkeypatch.setattr(handler, "_sleep", short.sleep)
        first = handler.handler(request(), short)
    assert first["statusCode"] == 503
    monkeypatch.setattr(handler, "_sleep", context.sleep)
    second = handler.handler(request(), context)  # Netlify redelivers; SQS recovered
    assert second["statusCode"] == 202
    messages = world.queued()
    assert {m["caller_reference"] for m in messages} == {REFERENCE}
    assert json.loads(first["body"])["invalidations"][0]["caller_reference"] == REFERENCE


def test_ssm_throttling_answers_503_and_the_secrets_are_fetched_again_later(world, context):
    handler.reset_state(keep_clients=True)  # secrets not fetched yet in this container
    with Stubber(handler.ssm_client()) as stub:
        stub.add_client_error("get_parameter", "ThrottlingException", http_status_code=400)
        response = handler.handler(request(), context)
    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]
    assert world.queued_count() == 0
    assert handler.handler(request(), context)["statusCode"] == 202  # not cached as a failure


def put_secrets_value(stub, value: str) -> None:
    stub.add_response(
        "get_parameter",
        {"Parameter": {"Name": SECRETS_PARAMETER, "Type": "SecureString", "Value": value}},
        {"Name": SECRETS_PARAMETER, "WithDecryption": True},
    )


def secrets_denied(stub) -> None:
    stub.add_client_error("get_parameter", "AccessDeniedException", http_status_code=400)


@pytest.mark.parametrize("unreadable", [partial(put_secrets_value, value="{"), secrets_denied])
def test_an_unreadable_secrets_parameter_is_read_and_logged_once_per_container(
    world, context, caplog, unreadable
):
    handler.reset_state(keep_clients=True)  # secrets not fetched yet in this container
    with Stubber(handler.ssm_client()) as stub:
        unreadable(stub)  # one answer queued: a second GetParameter would fail the stub
        answers = [handler.handler(request(), context) for _ in range(2)]
        stub.assert_no_pending_responses()
    for response in answers:
        body = answer_body(response)
        assert response["statusCode"] == 500
        assert body["variable"] == "SECRETS_PARAMETER"
        assert "SECRETS_PARAMETER" in body["reason"]
    assert answers[0]["body"] == answers[1]["body"]
    (logged,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert SECRETS_PARAMETER in logged.getMessage()
    assert world.queued_count() == 0


def test_a_new_container_reads_the_secrets_parameter_again_after_a_failure(world, context):
    handler.reset_state(keep_clients=True)
    with Stubber(handler.ssm_client()) as stub:
        secrets_denied(stub)
        assert handler.handler(request(), context)["statusCode"] == 500
    handler.reset_state(keep_clients=True)  # the operator fixed the policy; a new container
    assert handler.handler(request(), context)["statusCode"] == 202
