"""The function URL stand-in over real HTTP (a ``functionUrl`` stack): event, answer, logs.

The module's stack runs a recording function in place of the ingest; the real ingest behind the
function URL is in ``test_local_function.py``.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import uuid

import pytest

from infra.settings import ENDPOINT_FUNCTION_URL
from local import function_url
from local.stack import LocalStack
from tests.local.local_helpers import TEST_JWS_SECRET, TEST_TOKEN
from tests.local.local_helpers import url_request as send


class UrlFunction:
    """Stands in for the ingest: records events and contexts, answers ``answer(event)``."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.contexts: list[object] = []
        self.answer = self.default
        self._lock = threading.Lock()

    @staticmethod
    def default(event: dict) -> object:
        return {
            "statusCode": 202,
            "headers": {"Content-Type": "application/json", "X-Recorded": "yes"},
            "body": json.dumps({"status": "recorded"}),
            "isBase64Encoded": False,
        }

    def __call__(self, event: dict, context: object) -> object:
        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
        logging.getLogger("webhook").info("recorded", extra={"raw_path": event.get("rawPath")})
        return self.answer(event)


@pytest.fixture(scope="module")
def function() -> UrlFunction:
    return UrlFunction()


@pytest.fixture(scope="module")
def local(function):
    with LocalStack.start(
        "dev-url",
        webhook_token=TEST_TOKEN,
        jws_secret=TEST_JWS_SECRET,
        invoke=function,
        poll_queue=False,
    ) as stack:
        assert stack.settings.endpoint == ENDPOINT_FUNCTION_URL
        yield stack


@pytest.fixture(autouse=True)
def default_answer(function):
    yield
    function.answer = function.default


def test_the_webhook_url_is_the_stand_ins_url_with_the_path_and_token(local):
    assert local.webhook_url == (
        f"http://127.0.0.1:{local.listener.port}{local.settings.webhook_path}?token={TEST_TOKEN}"
    )
    assert local.webhook_host == f"{local.function_url_id}.lambda-url.{local.region}.on.aws"
    env = local.environment()
    assert env["NCW_ENDPOINT"] == "functionUrl"
    assert env["NCW_WEBHOOK_URL"] == local.webhook_url
    assert env["NCW_WEBHOOK_HOST"] == local.webhook_host


@pytest.mark.parametrize(
    ("method", "target", "host"),
    [
        ("POST", "/", None),
        ("GET", "/other/path?x=1", "anything.example.com"),
        ("POST", "/webhooks/netlify/extra", None),
        ("DELETE", "/webhooks/netlify", "127.0.0.1"),
    ],
)
def test_every_request_reaches_the_function_there_is_no_rule(local, function, method, target, host):
    calls = len(function.events)
    headers = [("Host", host)] if host else []
    status, answer_headers, body = send(local, method, target, headers=headers)
    assert status == 202
    assert dict(answer_headers)["X-Recorded"] == "yes"
    assert json.loads(body) == {"status": "recorded"}
    assert len(function.events) == calls + 1
    event = function.events[-1]
    assert event["requestContext"]["http"]["method"] == method
    assert event["rawPath"] == target.partition("?")[0]


def test_the_event_is_a_2_0_event_of_the_request_as_sent(local, function):
    send(
        local,
        target=f"/webhooks/netlify?token={TEST_TOKEN}&note=a%20b&note=c",
        body=b'{"id": "d1"}',
        headers=[
            ("Content-Type", "application/json"),
            ("X-Netlify-Event", "deploy_created"),
            ("X-Repeated", "one"),
            ("X-Repeated", "two"),
            ("Cookie", "session=abc; theme=dark"),
            ("User-Agent", "Netlify"),
        ],
    )
    event = function.events[-1]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/webhooks/netlify"
    assert event["rawQueryString"] == f"token={TEST_TOKEN}&note=a%20b&note=c"
    assert event["queryStringParameters"] == {"token": TEST_TOKEN, "note": "a b,c"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    headers = event["headers"]
    assert all(name == name.lower() for name in headers)
    assert "cookie" not in headers
    assert headers["x-repeated"] == "one,two"
    assert headers["x-netlify-event"] == "deploy_created"
    assert headers["x-forwarded-proto"] == "https" and headers["x-forwarded-port"] == "443"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-amzn-trace-id"].startswith("Root=1-")
    context = event["requestContext"]
    assert context["accountId"] == "anonymous"
    assert context["apiId"] == context["domainPrefix"] == local.function_url_id
    assert context["domainName"] == local.webhook_host
    assert context["http"] == {
        "method": "POST",
        "path": "/webhooks/netlify",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "Netlify",
    }
    assert context["stage"] == "$default"
    assert (event["body"], event["isBase64Encoded"]) == ('{"id": "d1"}', False)


def test_the_request_id_is_the_invocations_and_comes_back_in_the_answer(local, function):
    _, headers, _ = send(local)
    request_id = function.events[-1]["requestContext"]["requestId"]
    assert uuid.UUID(request_id)
    assert function.contexts[-1].aws_request_id == request_id
    assert dict(headers)["x-amzn-RequestId"] == request_id


def test_a_binary_body_reaches_the_function_base64_encoded(local, function):
    payload = bytes(range(256))
    send(local, body=payload, headers=[("Content-Type", "application/octet-stream")])
    event = function.events[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_cookies_in_the_answer_become_set_cookie_headers(local, function):
    function.answer = lambda event: {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": base64.b64encode(b"\x00binary").decode(),
        "isBase64Encoded": True,
    }
    status, headers, body = send(local)
    assert status == 200
    assert [value for name, value in headers if name.lower() == "set-cookie"] == [
        "a=1; Path=/",
        "b=2",
    ]
    assert body == b"\x00binary"


@pytest.mark.parametrize("answer", [{"message": "hi"}, "Hello, world!"])
def test_an_answer_without_status_code_is_200_json(local, function, answer):
    function.answer = lambda event: answer
    status, headers, body = send(local)
    assert status == 200
    assert dict(headers)["content-type"] == "application/json"
    assert json.loads(body) == answer


def _raises(event: dict) -> object:
    raise RuntimeError("boom")


@pytest.mark.parametrize("answer", [_raises, lambda event: {"statusCode": 200, "x": object()}])
def test_a_function_error_is_a_502(local, function, answer):
    function.answer = answer
    status, _, body = send(local)
    assert (status, body) == (502, function_url.FUNCTION_ERROR_BODY)


def test_a_body_over_lambdas_6_mb_is_refused_before_the_function(local, function):
    calls = len(function.events)
    head = (
        f"POST /webhooks/netlify HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {function_url.MAX_BODY_BYTES + 1}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", local.listener.port), timeout=10) as sock:
        sock.sendall(head.encode())  # the body never follows: the length alone is refused
        answer = sock.recv(65536)
    assert answer.split(b" ", 2)[1] == b"413"
    assert len(function.events) == calls


def test_the_functions_logs_land_in_its_log_group(local, function):
    send(local, target="/logged")
    request_id = function.contexts[-1].aws_request_id
    logs = local.client("logs")
    messages = []
    for stream in logs.describe_log_streams(logGroupName=local.log_group_name)["logStreams"]:
        events = logs.get_log_events(
            logGroupName=local.log_group_name, logStreamName=stream["logStreamName"]
        )["events"]
        messages += [json.loads(event["message"]) for event in events]
    mine = [m for m in messages if m.get("requestId") == request_id]
    assert [(m["message"], m["raw_path"]) for m in mine] == [("recorded", "/logged")]
