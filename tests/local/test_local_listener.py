"""The ALB stand-in over real HTTP: the rule, the event it builds, the function's answer."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import time
import urllib.parse
import uuid

import jwt
import pytest
from local_helpers import TEST_JWS_SECRET, TEST_TOKEN

from infra.function_contract import webhook_settings


def request(local, method="POST", *, path=None, query=None, host=None, body=b"", headers=None):
    """Send one request to the local listener; returns (status, reason, headers, body)."""
    path = local.rule.path if path is None else path
    query = f"token={TEST_TOKEN}" if query is None else query
    all_headers = {"Host": local.webhook_host if host is None else host, **(headers or {})}
    connection = http.client.HTTPConnection("127.0.0.1", local.listener.port, timeout=30)
    try:
        target = f"{path}?{query}" if query else path
        connection.request(method, target, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.reason, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_the_right_request_gets_the_functions_answer(stub_stack, recording_function):
    status, reason, headers, body = request(
        stub_stack, body=b'{"id": "d1"}', headers={"Content-Type": "application/json"}
    )
    assert (status, reason) == (202, "Accepted")
    assert headers["X-Recorded"] == "yes"
    assert json.loads(body) == {"status": "recorded"}


@pytest.mark.parametrize(
    "change",
    [
        {"host": "other.example.com"},
        {"host": "127.0.0.1"},
        {"path": "/webhooks/NETLIFY"},
        {"path": "/webhooks/netlify/extra"},
        {"query": "token=not-the-token-at-all"},
        {"query": ""},
    ],
)
def test_a_request_the_rule_does_not_match_gets_the_default_404(
    stub_stack, recording_function, change
):
    calls = len(recording_function.events)
    status, _, headers, body = request(stub_stack, **change)
    assert status == 404
    assert headers["Content-Type"] == "text/plain"
    assert body == b"Not found"
    assert len(recording_function.events) == calls  # the function never ran


def test_host_and_token_match_case_insensitively_as_the_alb(stub_stack, recording_function):
    status, *_ = request(
        stub_stack, host=stub_stack.webhook_host.upper(), query=f"token={TEST_TOKEN.swapcase()}"
    )
    assert status == 202
    # The ALB passes the token as sent: the function compares it exactly.
    event = recording_function.events[-1]
    assert event["queryStringParameters"]["token"] == TEST_TOKEN.swapcase()


def test_the_event_is_shaped_as_the_alb_sends_it(stub_stack, recording_function):
    request(
        stub_stack,
        query=f"token={TEST_TOKEN}&note=a%20b",
        body=b'{"id": "d2"}',
        headers={"Content-Type": "application/json", "X-Netlify-Event": "deploy_created"},
    )
    event = recording_function.events[-1]
    assert set(event) == {
        "requestContext",
        "httpMethod",
        "path",
        "queryStringParameters",
        "headers",
        "body",
        "isBase64Encoded",
    }
    assert event["requestContext"]["elb"]["targetGroupArn"] == stub_stack.target_group_arn
    assert event["httpMethod"] == "POST"
    assert event["path"] == stub_stack.rule.path
    assert event["queryStringParameters"] == {"token": TEST_TOKEN, "note": "a%20b"}
    assert all(name == name.lower() for name in event["headers"])
    assert event["headers"]["x-netlify-event"] == "deploy_created"
    assert event["headers"]["host"] == stub_stack.webhook_host
    for added in ("x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"):
        assert added in event["headers"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"id": "d2"}', False)


def test_a_binary_body_reaches_the_function_base64_encoded(stub_stack, recording_function):
    payload = bytes(range(256))
    request(stub_stack, body=payload, headers={"Content-Type": "application/octet-stream"})
    event = recording_function.events[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_the_context_reports_remaining_time(stub_stack, recording_function):
    request(stub_stack)
    context = recording_function.contexts[-1]
    assert 0 < context.get_remaining_time_in_millis() <= 30_000
    assert context.function_name == stub_stack.function_name
    assert uuid.UUID(context.aws_request_id)


def test_the_functions_logs_land_in_its_log_group(stub_stack, recording_function):
    request(stub_stack)
    request_id = recording_function.contexts[-1].aws_request_id
    logs = stub_stack.client("logs")
    messages = []
    for stream in logs.describe_log_streams(logGroupName=stub_stack.log_group_name)["logStreams"]:
        events = logs.get_log_events(
            logGroupName=stub_stack.log_group_name, logStreamName=stream["logStreamName"]
        )["events"]
        messages += [json.loads(event["message"]) for event in events]
    mine = [m for m in messages if m.get("requestId") == request_id]
    assert [m["message"] for m in mine] == ["recorded"]
    assert mine[0]["level"] == "INFO" and mine[0]["logger"] == "webhook"
    assert mine[0]["path"] == stub_stack.rule.path
    reports = [m for m in messages if m.get("type") == "platform.report"]
    assert request_id in {m["record"]["requestId"] for m in reports}


# -- the real function, in-process ---------------------------------------------------------


def _deploy(site_id: str, deploy_id: str) -> bytes:
    deploy = {"id": deploy_id, "site_id": site_id, "state": "ready", "context": "production"}
    return json.dumps(deploy).encode()


def _signed_headers(body: bytes) -> dict[str, str]:
    claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
    return {
        "Content-Type": "application/json",
        "X-Netlify-Event": "deploy_created",
        "X-Webhook-Signature": jwt.encode(claims, TEST_JWS_SECRET, algorithm="HS256"),
    }


def test_a_signed_notification_makes_the_function_invalidate(handler_stack):
    deploy_id = f"dep{int(time.time() * 1000)}"
    body = _deploy(handler_stack.settings.netlify_site_id, deploy_id)
    status, _, _, answer = request(handler_stack, body=body, headers=_signed_headers(body))
    assert 200 <= status < 300, answer

    reference = webhook_settings.caller_reference(
        deploy_id, handler_stack.settings.invalidation_paths
    )
    cloudfront = handler_stack.client("cloudfront")
    for dist_id in handler_stack.distribution_ids:
        items = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]["Items"]
        references = [
            cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"][
                "InvalidationBatch"
            ]["CallerReference"]
            for item in items
        ]
        assert reference in references


def test_a_token_the_alb_lets_through_in_other_case_is_refused_by_the_function(handler_stack):
    body = _deploy(handler_stack.settings.netlify_site_id, "dep-case")
    status, _, _, _ = request(
        handler_stack,
        query=f"token={urllib.parse.quote(TEST_TOKEN.swapcase())}",
        body=body,
        headers=_signed_headers(body),
    )
    assert status in (401, 403)  # past the ALB rule (case-insensitive), stopped by the function


def test_multi_value_mode_round_trips_through_the_real_function():
    from local.stack import LocalStack

    with LocalStack.start(
        "dev", webhook_token=TEST_TOKEN, jws_secret=TEST_JWS_SECRET, multi_value_headers=True
    ) as local:
        body = _deploy(local.settings.netlify_site_id, "dep-multi")
        status, reason, headers, answer = request(local, body=body, headers=_signed_headers(body))
    assert (status, reason) == (202, "Accepted"), answer
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer)["deploy_id"] == "dep-multi"
