"""The answer comes before the Lambda timeout even when AWS answers byte by byte.

botocore's read timeout bounds each read, not the call: a trickling SQS or SSM would keep the
function past its timeout (the ALB then answers a bare 502). These tests serve such an answer
from 127.0.0.1 and give the handler a context whose clock is real.
"""

from __future__ import annotations

import time

import pytest

from function import handler
from tests.function.function_testkit import answer_body, request
from tests.function.trickle import TricklingEndpoint


class RealClockContext:
    """A Lambda context with ``budget_s`` of real time left."""

    aws_request_id = "req-trickle"

    def __init__(self, budget_s: float) -> None:
        self.deadline = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


@pytest.fixture
def trickling():
    endpoint = TricklingEndpoint()
    yield endpoint
    endpoint.stop()
    handler.reset_state()


def test_a_trickling_sqs_gets_a_503_before_the_deadline(world, trickling, monkeypatch):
    handler.handler(request(dist=world.distribution_ids[0]), RealClockContext(10))  # secrets
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", trickling.url)
    handler.reset_state(keep_clients=False)
    # Secrets from moto again, then SendMessageBatch to the trickling endpoint.
    context = RealClockContext(budget_s=handler.RESERVE_MS / 1000 + 3)
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert trickling.requests >= 1  # the send really went to the trickling endpoint
    assert response["statusCode"] == 503, body
    assert {item["error"] for item in body["invalidations"]} == {"DeadlineExceeded"}
    # Answered while the Lambda still had time: no bare 502 from the ALB.
    assert context.get_remaining_time_in_millis() > 0


def test_a_trickling_ssm_gets_a_503_before_the_deadline(world, trickling, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", trickling.url)
    handler.reset_state(keep_clients=False)
    context = RealClockContext(budget_s=handler.RESERVE_MS / 1000 + 3)
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert trickling.requests >= 1
    assert response["statusCode"] == 503, body
    assert "DeadlineExceeded" in body["reason"]
    assert context.get_remaining_time_in_millis() > 0
    assert world.queued_count() == 0
