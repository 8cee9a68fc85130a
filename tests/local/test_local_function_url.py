"""A function URL's behaviour as the stand-in emulates it: the 2.0 event and the answer."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from local import function_url

FIXTURES = Path(__file__).parent / "fixtures"


def _event(**changes):
    arguments = {
        "method": "POST",
        "raw_path": "/p",
        "raw_query": "",
        "headers": [],
        "body": b"",
        "source_ip": "127.0.0.1",
        "url_id": "u" * 32,
        "region": "us-east-1",
        "request_id": "req-1",
        **changes,
    }
    return function_url.build_event(**arguments)


def test_event_equals_the_aws_docs_example_for_the_same_request():
    expected = json.loads((FIXTURES / "function_url_event_aws_docs.json").read_text())
    context = expected["requestContext"]
    event = function_url.build_event(
        method="POST",
        raw_path="/my/path",
        raw_query=expected["rawQueryString"],
        headers=[
            ("Header1", "value1"),
            ("Header2", "value1"),
            ("Header2", "value2"),
            ("Cookie", "cookie1; cookie2"),
            ("User-Agent", "agent"),
            ("Content-Type", "text/plain"),
        ],
        body=b"Hello from client!",
        source_ip=context["http"]["sourceIp"],
        url_id=context["apiId"],
        region="us-west-2",
        request_id=context["requestId"],
        received_at=context["timeEpoch"] / 1000,
    )
    assert event == expected
    assert list(event) == list(expected)  # same fields, same order


def test_the_raw_query_stays_as_sent_and_the_parameters_are_decoded():
    event = _event(raw_query="token=a%2Bb&next=%2Fhome&flag&a=1&a=2")
    assert event["rawQueryString"] == "token=a%2Bb&next=%2Fhome&flag&a=1&a=2"
    assert event["queryStringParameters"] == {
        "token": "a+b",
        "next": "/home",
        "flag": "",
        "a": "1,2",
    }


def test_a_request_without_query_cookies_or_body_has_none_of_those_fields():
    event = _event(method="GET", raw_path="/")
    assert "queryStringParameters" not in event
    assert "cookies" not in event
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    assert event["rawQueryString"] == ""


def test_headers_are_lowercased_and_repeats_comma_joined_in_order():
    event = _event(headers=[("X-A", "1"), ("x-a", "2"), ("X-B", "3"), ("X-A", "4")])
    assert event["headers"] == {"x-a": "1,2,4", "x-b": "3"}


def test_cookies_leave_the_headers_for_the_cookies_field():
    event = _event(headers=[("Cookie", "a=1; b=2"), ("Cookie", "c=3"), ("X-Other", "y")])
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]
    assert event["headers"] == {"x-other": "y"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/xml",
        "application/ld+json",
    ],
)
def test_text_content_types_pass_the_body_as_text(content_type):
    body = '{"id": "dep1", "name": "café"}'.encode()
    event = _event(headers=[("Content-Type", content_type)], body=body)
    assert (event["body"], event["isBase64Encoded"]) == (body.decode(), False)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([("Content-Type", "application/octet-stream")], b"\x00\x01binary"),
        ([("Content-Type", "application/x-www-form-urlencoded")], b"a=1"),
        ([("Content-Type", "application/json")], b"\xff\xfe not utf-8"),
        ([], b"no content type"),
    ],
)
def test_other_bodies_are_base64_encoded(headers, body):
    event = _event(headers=headers, body=body)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_the_request_context_is_the_function_urls():
    event = _event(
        method="PUT",
        raw_path="/a%20b",
        headers=[("User-Agent", "curl/8")],
        source_ip="10.0.0.9",
        url_id="abc" + "0" * 29,
        region="eu-west-1",
        request_id="r-9",
        received_at=0,
    )
    assert event["rawPath"] == "/a%20b"
    assert event["requestContext"] == {
        "accountId": "anonymous",
        "apiId": "abc" + "0" * 29,
        "domainName": f"abc{'0' * 29}.lambda-url.eu-west-1.on.aws",
        "domainPrefix": "abc" + "0" * 29,
        "http": {
            "method": "PUT",
            "path": "/a%20b",
            "protocol": "HTTP/1.1",
            "sourceIp": "10.0.0.9",
            "userAgent": "curl/8",
        },
        "requestId": "r-9",
        "routeKey": "$default",
        "stage": "$default",
        "time": "01/Jan/1970:00:00:00 +0000",
        "timeEpoch": 0,
    }


def test_url_ids_look_like_lambdas_and_differ_per_stack():
    first, second = function_url.url_id("dev", "p"), function_url.url_id("dev-url", "p")
    assert first != second
    assert len(first) == 32 and first.isalnum() and first == first.lower()


# -- the answer --------------------------------------------------------------------------------


def test_a_response_with_status_code_is_sent_as_given_with_its_cookies():
    status, headers, body = function_url.response_parts(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Custom": "v"},
            "body": '{"ok": true}',
            "cookies": ["a=1; Max-Age=60", "b=2"],
            "isBase64Encoded": False,
        }
    )
    assert status == 201
    assert headers == [
        ("Content-Type", "application/json"),
        ("X-Custom", "v"),
        ("set-cookie", "a=1; Max-Age=60"),
        ("set-cookie", "b=2"),
    ]
    assert body == b'{"ok": true}'


def test_a_base64_body_is_decoded():
    payload = bytes(range(256))
    status, _, body = function_url.response_parts(
        {"statusCode": 200, "body": base64.b64encode(payload).decode(), "isBase64Encoded": True}
    )
    assert (status, body) == (200, payload)


@pytest.mark.parametrize(
    "response",
    ["Hello, world!", {"message": "Hello, world!"}, [1, 2], None, 7],
)
def test_json_without_a_status_code_is_a_200_json_answer_of_that_json(response):
    status, headers, body = function_url.response_parts(response)
    assert status == 200
    assert headers == [("content-type", "application/json")]
    assert json.loads(body) == response


@pytest.mark.parametrize(
    "response",
    [
        {"statusCode": "201"},
        {"statusCode": True},
        {"statusCode": 99},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "cookies": "a=1"},
        {"statusCode": 200, "body": "***", "isBase64Encoded": True},
        {"not": object()},
    ],
)
def test_an_answer_the_url_cannot_send_is_a_function_error(response):
    with pytest.raises(function_url.FunctionError):
        function_url.response_parts(response)
