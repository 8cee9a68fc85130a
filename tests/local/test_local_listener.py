"""The ALB stand-in over real HTTP: the rule, the event it builds, the function's answer."""

from __future__ import annotations

import base64
import json
import socket
import uuid

import pytest

from tests.local.local_helpers import TEST_TOKEN, request


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


# -- how the body is framed ----------------------------------------------------------------


def raw_request(local, head: list[str], body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as written (no client-side framing checks); returns (status, whole answer)."""
    lines = [
        f"POST {local.rule.path}?token={TEST_TOKEN} HTTP/1.1",
        f"Host: {local.webhook_host}",
        "Content-Type: application/json",
        *head,
    ]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", local.listener.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize("length", ["abc", "1.5", "-1", "+2", "2, 3"])
def test_a_content_length_that_is_not_a_number_is_a_bad_request(
    stub_stack, recording_function, length
):
    calls = len(recording_function.events)
    status, answer = raw_request(stub_stack, [f"Content-Length: {length}"], b"{}")
    assert status == 400, answer
    assert len(recording_function.events) == calls


def test_a_chunked_body_reaches_the_function_whole(stub_stack, recording_function):
    chunks = [b'{"id": ', b'"chunked-1"', b"}"]
    status, *_ = request(
        stub_stack, body=iter(chunks), headers={"Content-Type": "application/json"}
    )
    assert status == 202
    event = recording_function.events[-1]
    assert (event["body"], event["isBase64Encoded"]) == ('{"id": "chunked-1"}', False)


@pytest.mark.parametrize(
    ("head", "body"),
    [
        (["Transfer-Encoding: chunked"], b"zz\r\n{}\r\n0\r\n\r\n"),  # not a hex size
        (["Transfer-Encoding: chunked"], b"2\r\n{}XX0\r\n\r\n"),  # no CRLF after the data
        (["Transfer-Encoding: chunked", "Content-Length: 2"], b"2\r\n{}\r\n0\r\n\r\n"),
        (["Transfer-Encoding: gzip"], b"{}"),  # the final coding must be chunked
    ],
)
def test_a_malformed_chunked_body_is_a_bad_request(stub_stack, recording_function, head, body):
    calls = len(recording_function.events)
    status, answer = raw_request(stub_stack, head, body)
    assert status == 400, answer
    assert len(recording_function.events) == calls


def test_a_chunked_body_over_1_mb_is_refused_like_a_long_one(stub_stack):
    chunk = b"x" * (512 * 1024)
    status, *_ = request(
        stub_stack, body=iter([chunk, chunk, b"x"]), headers={"Content-Type": "text/plain"}
    )
    assert status == 413
