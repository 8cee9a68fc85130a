"""CloudFront faults, injected with botocore's Stubber on the handler's own client.

SSM still answers from moto; the context's clock moves only when the handler backs off, so the
"until the time budget runs out" case takes no real time.
"""

from __future__ import annotations

import datetime

import handler
import pytest
import webhook_settings
from botocore.stub import Stubber
from function_testkit import FIXTURE_DEPLOY_ID, FakeContext, answer_body, request

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
    results = {item["distribution_id"]: item for item in body["invalidations"]}
    assert results[first]["outcome"] == "invalidating"
    assert results[first]["invalidation_id"] == "IOKFIRST"
    assert results[second]["outcome"] == "failed"
    assert second in body["reason"] and first not in body["reason"]


def test_transient_failure_of_one_distribution_answers_503_after_trying_the_other(
    world, monkeypatch
):
    context = FakeContext(remaining_ms=5_000)
    monkeypatch.setattr(handler, "_sleep", context.sleep)
    monkeypatch.setattr(handler, "_jitter", lambda: 1.0)
    first, second = world.distribution_ids
    with Stubber(handler.cloudfront_client()) as stub:
        # Backoffs of 0.25, 0.5 and 1 s fit in 5 s; a fourth failure's 2 s would not.
        error(stub, first, "ServiceUnavailable", 503, times=4)
        stub.add_response("create_invalidation", created("IOKSECOND"), expected(second))
        response = handler.handler(request(), context)
        stub.assert_no_pending_responses()
    body = answer_body(response)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == str(handler.RETRY_AFTER_TRANSIENT_S)
    results = {item["distribution_id"]: item for item in body["invalidations"]}
    assert results[first]["outcome"] == "retry_later"
    assert results[second]["invalidation_id"] == "IOKSECOND"


def test_redelivery_after_503_reuses_the_reference_and_creates_in_cloudfront(
    world, context, monkeypatch
):
    dist = world.distribution_ids[0]
    world.configure(DISTRIBUTION_IDS=dist)
    short = FakeContext(remaining_ms=3_000)
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
