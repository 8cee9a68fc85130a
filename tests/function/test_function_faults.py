"""CloudFront faults, injected with botocore's Stubber on the handler's own client.

SSM still answers from moto; the context's clock moves only when the handler backs off, so the
"until the time budget runs out" case takes no real time.
"""

from __future__ import annotations

import datetime
import logging
from functools import partial

import pytest
from botocore.stub import Stubber

from function import handler, webhook_settings
from tests.function.function_testkit import (
    FIXTURE_DEPLOY_ID,
    SECRETS_PARAMETER,
    FakeContext,
    answer_body,
    request,
)

REFERENCE = webhook_settings.caller_reference(FIXTURE_DEPLOY_ID, ("/*",))


def expected(distribution_id: str) -> dict:
    """The request every attempt must make: the same CallerReference each time."""
    return {
        "DistributionId": distribution_id,
        "InvalidationBatch": {
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": REFERENCE,
        },
    }


def created(invalidation_id: str) -> dict:
    return {
        "Location": f"https://cloudfront.amazonaws.com/2020-05-31/invalidation/{invalidation_id}",
        "Invalidation": {
            "Id": invalidation_id,
            "Status": "InProgress",
            "CreateTime": datetime.datetime(2026, 11, 28, tzinfo=datetime.UTC),
            "InvalidationBatch": {
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": REFERENCE,
            },
        },
    }


@pytest.fixture
def stubber(world):
    """The handler's CloudFront client, stubbed; settings name only the first distribution."""
    world.configure(DISTRIBUTION_IDS=world.distribution_ids[0])
    with Stubber(handler.cloudfront_client()) as stub:
        yield stub


def error(stub, distribution_id, code, status, times=1):
    for _ in range(times):
        stub.add_client_error(
            "create_invalidation",
            service_error_code=code,
            service_message=f"injected {code}",
            http_status_code=status,
            expected_params=expected(distribution_id),
        )


def failing_beside_a_success(stub, failing, succeeding, code, status, retries):
    """Round-robin order: each distribution's first attempt, then only the failing one's retries."""
    error(stub, failing, code, status)
    stub.add_response("create_invalidation", created("IOKSECOND"), expected(succeeding))
    error(stub, failing, code, status, times=retries)


def by_distribution(body: dict) -> dict:
    return {item["distribution_id"]: item for item in body["invalidations"]}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ServiceUnavailable", 503),
        ("InternalError", 500),
        ("Throttling", 400),
        ("TooManyInvalidationsInProgress", 400),
    ],
)
def test_transient_error_then_success_answers_202(world, context, stubber, code, status):
    dist = world.distribution_ids[0]
    error(stubber, dist, code, status)
    stubber.add_response("create_invalidation", created("I2FIRSTTRY"), expected(dist))
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert response["statusCode"] == 202, body
    (item,) = body["invalidations"]
    assert item["invalidation_id"] == "I2FIRSTTRY"
    assert item["attempts"] == 2
    assert len(context.sleeps) == 1
    stubber.assert_no_pending_responses()


def test_throttled_twice_then_success_backs_off_between_attempts(
    world, context, stubber, monkeypatch
):
    monkeypatch.setattr(handler, "_jitter", lambda: 1.0)
    dist = world.distribution_ids[0]
    error(stubber, dist, "Throttling", 400, times=2)
    stubber.add_response("create_invalidation", created("I3THIRDTRY"), expected(dist))
    response = handler.handler(request(), context)
    assert response["statusCode"] == 202
    assert context.sleeps == [handler.BACKOFF_BASE_S, handler.BACKOFF_BASE_S * 2]
    stubber.assert_no_pending_responses()


def test_too_many_in_progress_until_the_budget_runs_out_answers_503(world, stubber, monkeypatch):
    context = FakeContext(remaining_ms=10_000)
    monkeypatch.setattr(handler, "_sleep", context.sleep)
    dist = world.distribution_ids[0]
    error(stubber, dist, "TooManyInvalidationsInProgress", 400, times=50)
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert response["statusCode"] == 503
    assert response["statusDescription"] == "503 Service Unavailable"
    assert response["headers"]["Retry-After"] == str(handler.RETRY_AFTER_BUSY_S)
    assert body["status"] == "retry_later"
    (item,) = body["invalidations"]
    assert item["error"] == "TooManyInvalidationsInProgress"
    assert item["invalidation_id"] is None
    # It kept trying while there was time, and stopped with time left to answer.
    assert item["attempts"] >= 4
    assert item["attempts"] == len(context.sleeps) + 1
    assert context.remaining_ms >= handler.RESERVE_MS
    assert sum(context.sleeps) * 1000 <= 10_000 - handler.RESERVE_MS


def test_no_time_left_answers_503_without_calling_cloudfront(world, stubber, monkeypatch):
    context = FakeContext(remaining_ms=handler.RESERVE_MS - 1)
    response = handler.handler(request(), context)  # the stubber has nothing queued
    assert response["statusCode"] == 503
    assert answer_body(response)["invalidations"][0]["attempts"] == 0


@pytest.mark.parametrize(("code", "status"), [("AccessDenied", 403), ("NoSuchDistribution", 404)])
def test_permanent_error_answers_502_naming_the_distribution(world, context, stubber, code, status):
    dist = world.distribution_ids[0]
    error(stubber, dist, code, status)
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert response["statusCode"] == 502
    assert dist in body["reason"] and code in body["reason"]
    assert body["invalidations"][0]["error"] == code
    assert body["invalidations"][0]["attempts"] == 1  # not retried
    assert context.sleeps == []
    stubber.assert_no_pending_responses()


def test_partial_failure_lists_every_distribution(world, context):
    first, second = world.distribution_ids
    with Stubber(handler.cloudfront_client()) as stub:
        stub.add_response("create_invalidation", created("IOKFIRST"), expected(first))
        error(stub, second, "AccessDenied", 403)
        response = handler.handler(request(), context)
        stub.assert_no_pending_responses()
    body = answer_body(response)
    assert response["statusCode"] == 502
    results = by_distribution(body)
    assert results[first]["outcome"] == "invalidating"
    assert results[first]["invalidation_id"] == "IOKFIRST"
    assert results[second]["outcome"] == "failed"
    assert second in body["reason"] and first not in body["reason"]


def test_transient_failure_of_one_distribution_answers_503_after_trying_the_other(
    world, monkeypatch
):
    context = FakeContext(remaining_ms=handler.RESERVE_MS + 2_000)
    monkeypatch.setattr(handler, "_sleep", context.sleep)
    monkeypatch.setattr(handler, "_jitter", lambda: 1.0)
    first, second = world.distribution_ids
    with Stubber(handler.cloudfront_client()) as stub:
        # Backoffs of 0.25, 0.5 and 1 s fit in the 2 s above the reserve; a fourth's 2 s would not.
        failing_beside_a_success(stub, first, second, "ServiceUnavailable", 503, retries=3)
        response = handler.handler(request(), context)
        stub.assert_no_pending_responses()
    body = answer_body(response)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == str(handler.RETRY_AFTER_TRANSIENT_S)
    results = by_distribution(body)
    assert results[first]["outcome"] == "retry_later"
    assert results[second]["invalidation_id"] == "IOKSECOND"


def test_a_busy_distribution_does_not_spend_the_time_the_others_need(world, context):
    first, second = world.distribution_ids
    with Stubber(handler.cloudfront_client()) as stub:
        # Busy throughout: more failures queued than the time allows attempts. Retrying the
        # first before the second's first attempt would not match the stub's order.
        failing_beside_a_success(
            stub, first, second, "TooManyInvalidationsInProgress", 400, retries=100
        )
        response = handler.handler(request(), context)
    body = answer_body(response)
    assert response["statusCode"] == 503, body
    assert response["headers"]["Retry-After"] == str(handler.RETRY_AFTER_BUSY_S)
    results = by_distribution(body)
    assert set(results) == {first, second}
    assert results[second]["outcome"] == "invalidating"
    assert results[second]["invalidation_id"] == "IOKSECOND"
    assert results[second]["attempts"] >= 1
    assert results[first]["outcome"] == "retry_later"
    assert results[first]["error"] == "TooManyInvalidationsInProgress"
    assert results[first]["attempts"] == len(context.sleeps) + 1 >= 2
    assert context.remaining_ms >= handler.RESERVE_MS  # stopped with time left to answer


def test_every_attempt_on_every_distribution_carries_the_deploys_reference(world, context):
    first, second = world.distribution_ids
    with Stubber(handler.cloudfront_client()) as stub:
        # expected() pins the CallerReference of each call, retries included.
        error(stub, first, "Throttling", 400)
        error(stub, second, "ServiceUnavailable", 503)
        stub.add_response("create_invalidation", created("IOKFIRST"), expected(first))
        stub.add_response("create_invalidation", created("IOKSECOND"), expected(second))
        response = handler.handler(request(), context)
        stub.assert_no_pending_responses()
    assert response["statusCode"] == 202
    assert [item["attempts"] for item in answer_body(response)["invalidations"]] == [2, 2]
    assert len(context.sleeps) == 1  # one backoff per round, shared by the distributions


def test_redelivery_after_503_reuses_the_reference_and_creates_in_cloudfront(
    world, context, monkeypatch
):
    dist = world.distribution_ids[0]
    world.configure(DISTRIBUTION_IDS=dist)
    short = FakeContext(remaining_ms=handler.RESERVE_MS + 3_000)
    monkeypatch.setattr(handler, "_sleep", short.sleep)
    with Stubber(handler.cloudfront_client()) as stub:
        error(stub, dist, "ServiceUnavailable", 503, times=100)
        first = handler.handler(request(), short)
    assert first["statusCode"] == 503
    assert world.invalidations(dist) == []
    monkeypatch.setattr(handler, "_sleep", context.sleep)
    second = handler.handler(request(), context)  # Netlify redelivers; CloudFront recovered
    assert second["statusCode"] == 202
    (held,) = world.invalidations(dist)
    assert held["InvalidationBatch"]["CallerReference"] == REFERENCE


def test_ssm_throttling_answers_503_and_the_secrets_are_fetched_again_later(world, context):
    dist = world.distribution_ids[0]
    handler.reset_state(keep_clients=True)  # secrets not fetched yet in this container
    with Stubber(handler.ssm_client()) as stub:
        stub.add_client_error("get_parameter", "ThrottlingException", http_status_code=400)
        response = handler.handler(request(), context)
    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]
    assert world.invalidations(dist) == []
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
    assert world.invalidation_count() == 0


def test_a_new_container_reads_the_secrets_parameter_again_after_a_failure(world, context):
    handler.reset_state(keep_clients=True)
    with Stubber(handler.ssm_client()) as stub:
        secrets_denied(stub)
        assert handler.handler(request(), context)["statusCode"] == 500
    handler.reset_state(keep_clients=True)  # the operator fixed the policy; a new container
    assert handler.handler(request(), context)["statusCode"] == 202
