"""The ALB's behaviour as the local listener emulates it: rule matching, event and response."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.rule import WebhookRule
from infra.settings import Secret
from local import alb

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "Abc_def-0123456789xyz"
RULE = WebhookRule(
    host="lambda.example.com", path="/webhooks/netlify", token=Secret(TOKEN), priority=1
)


def test_event_equals_the_aws_docs_example_for_the_same_request():
    expected = json.loads((FIXTURES / "alb_event_aws_docs.json").read_text())
    headers = [(name.title(), value) for name, value in expected["headers"].items()]

    event = alb.build_event(
        method="GET",
        path="/lambda",
        raw_query="query=1234ABCD",
        headers=headers,
        body=b"",
        target_group_arn=expected["requestContext"]["elb"]["targetGroupArn"],
    )

    assert event == expected
    assert list(event) == list(expected)  # same fields, same order


def test_header_names_are_lowercased_and_the_last_repeat_wins():
    event = alb.build_event(
        method="POST",
        path="/p",
        raw_query="",
        headers=[("X-Netlify-Event", "deploy_building"), ("X-NETLIFY-EVENT", "deploy_created")],
        body=b"",
        target_group_arn="arn",
    )
    assert event["headers"] == {"x-netlify-event": "deploy_created"}
    assert event["queryStringParameters"] == {}


def test_query_values_stay_url_encoded():
    event = alb.build_event(
        method="GET",
        path="/p",
        raw_query="token=a%2Bb%20c&next=%2Fhome&flag",
        headers=[],
        body=b"",
        target_group_arn="arn",
    )
    assert event["queryStringParameters"] == {"token": "a%2Bb%20c", "next": "%2Fhome", "flag": ""}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/xml"],
)
def test_text_content_types_pass_the_body_as_text(content_type):
    body = '{"id": "dep1", "name": "café"}'.encode()
    event = alb.build_event(
        method="POST",
        path="/p",
        raw_query="",
        headers=[("Content-Type", content_type)],
        body=body,
        target_group_arn="arn",
    )
    assert event["isBase64Encoded"] is False
    assert event["body"] == body.decode()


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "application/octet-stream")],
        [("Content-Type", "application/x-www-form-urlencoded")],
        [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        [],
    ],
)
def test_other_bodies_are_base64_encoded(headers):
    body = b"\x00\x01binary\xff"
    event = alb.build_event(
        method="POST", path="/p", raw_query="", headers=headers, body=body, target_group_arn="arn"
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_multi_value_mode_replaces_the_single_value_fields():
    event = alb.build_event(
        method="GET",
        path="/p",
        raw_query="a=1&a=2&b=%20",
        headers=[("Cookie", "x=1"), ("cookie", "y=2")],
        body=b"",
        target_group_arn="arn",
        multi_value=True,
    )
    assert "headers" not in event and "queryStringParameters" not in event
    assert event["multiValueHeaders"] == {"cookie": ["x=1", "y=2"]}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["%20"]}


@pytest.mark.parametrize(
    ("pattern", "value", "case_sensitive", "expected"),
    [
        ("abc", "ABC", False, True),
        ("abc", "ABC", True, False),
        ("a*c", "abbbc", False, True),
        ("a?c", "abc", False, True),
        ("a?c", "ac", False, False),
        (r"a\*c", "a*c", False, True),
        (r"a\*c", "abc", False, False),
        (r"a\?c", "abc", False, False),
        ("abc", "abcd", False, False),
    ],
)
def test_condition_values_use_alb_wildcards(pattern, value, case_sensitive, expected):
    assert alb.wildcard_match(pattern, value, case_sensitive=case_sensitive) is expected


def test_the_right_request_matches_the_rule():
    assert alb.rule_matches(RULE, "lambda.example.com", "/webhooks/netlify", f"token={TOKEN}")


def test_the_host_is_matched_case_insensitively_and_without_its_port():
    assert alb.rule_matches(RULE, "LAMBDA.Example.com:443", "/webhooks/netlify", f"token={TOKEN}")


def test_the_token_is_matched_case_insensitively_as_the_alb_does():
    assert alb.rule_matches(
        RULE, "lambda.example.com", "/webhooks/netlify", f"TOKEN={TOKEN.upper()}"
    )


def test_the_token_may_come_among_other_query_parameters():
    query = f"a=1&token=wrong&token={TOKEN}&b=2"
    assert alb.rule_matches(RULE, "lambda.example.com", "/webhooks/netlify", query)


@pytest.mark.parametrize(
    ("host", "path", "query"),
    [
        ("other.example.com", "/webhooks/netlify", f"token={TOKEN}"),
        (None, "/webhooks/netlify", f"token={TOKEN}"),
        ("lambda.example.com", "/webhooks/Netlify", f"token={TOKEN}"),
        ("lambda.example.com", "/webhooks/netlify/", f"token={TOKEN}"),
        ("lambda.example.com", "/webhooks/netlify", "token=wrong-token-value-123"),
        ("lambda.example.com", "/webhooks/netlify", f"token={TOKEN}x"),
        ("lambda.example.com", "/webhooks/netlify", f"tok={TOKEN}"),
        ("lambda.example.com", "/webhooks/netlify", ""),
    ],
)
def test_wrong_host_path_or_token_does_not_match(host, path, query):
    assert not alb.rule_matches(RULE, host, path, query)


def test_a_token_with_wildcard_characters_is_matched_literally():
    rule = WebhookRule(host="h.example.com", path="/p", token=Secret("ab*cd?ef"), priority=1)
    assert alb.rule_matches(rule, "h.example.com", "/p", "token=ab*cd?ef")
    assert not alb.rule_matches(rule, "h.example.com", "/p", "token=abXXcdYef")


def test_the_response_becomes_status_reason_headers_and_body():
    status, reason, headers, body = alb.response_parts(
        {
            "statusCode": 202,
            "statusDescription": "202 Accepted",
            "headers": {"Content-Type": "application/json"},
            "body": '{"ok": true}',
            "isBase64Encoded": False,
        },
        multi_value=False,
    )
    assert (status, reason, headers, body) == (
        202,
        "Accepted",
        [("Content-Type", "application/json")],
        b'{"ok": true}',
    )


def test_a_base64_response_body_is_decoded_and_multi_value_headers_repeat():
    status, _, headers, body = alb.response_parts(
        {
            "statusCode": 200,
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x00\xff").decode(),
            "isBase64Encoded": True,
        },
        multi_value=True,
    )
    assert status == 200
    assert headers == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert body == b"\x00\xff"


@pytest.mark.parametrize("response", [None, {}, {"statusCode": "200"}, {"statusCode": 99}])
def test_a_response_without_a_valid_status_is_a_bad_gateway(response):
    with pytest.raises(alb.BadLambdaResponse):
        alb.response_parts(response, multi_value=False)


# -- the condition list infra.rule writes, evaluated generically ----------------------------


def test_the_rules_conditions_are_the_pulumi_aws_input_shape():
    assert RULE.conditions("escaped-token") == [
        {"host_header": {"values": ["lambda.example.com"]}},
        {"path_pattern": {"values": ["/webhooks/netlify"]}},
        {"query_strings": [{"key": "token", "value": "escaped-token"}]},
    ]


def test_infra_rule_does_not_import_pulumi():
    run = subprocess.run(
        [sys.executable, "-c", "import sys, infra.rule; sys.exit('pulumi' in sys.modules)"],
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0


@pytest.mark.parametrize(
    ("condition", "host", "path", "query", "expected"),
    [
        (
            {"host_header": {"values": ["a.example.com", "*.example.org"]}},
            "B.Example.ORG",
            "/",
            "",
            True,
        ),
        ({"host_header": {"values": ["a.example.com"]}}, None, "/", "", False),
        ({"path_pattern": {"values": ["/img/*", "/doc?"]}}, "h", "/doc1", "", True),
        ({"path_pattern": {"values": ["/img/*"]}}, "h", "/IMG/a.png", "", False),
        ({"query_strings": [{"value": "yes"}]}, "h", "/", "any=YES", True),
        (
            {"query_strings": [{"key": "a*", "value": "1"}, {"key": "b", "value": "2"}]},
            "h",
            "/",
            "b=2",
            True,
        ),
        ({"query_strings": [{"key": "k", "value": r"v\*"}]}, "h", "/", "k=vx", False),
        ({"query_strings": [{"key": "k", "value": r"v\*"}]}, "h", "/", "k=v*", True),
    ],
)
def test_each_condition_type_is_evaluated_as_the_alb_does(condition, host, path, query, expected):
    assert alb.conditions_match([condition], host, path, query) is expected


def test_every_condition_must_hold():
    conditions = RULE.conditions(TOKEN)
    assert alb.conditions_match(
        conditions, "lambda.example.com", "/webhooks/netlify", f"token={TOKEN}"
    )
    assert not alb.conditions_match(conditions, "lambda.example.com", "/other", f"token={TOKEN}")


@pytest.mark.parametrize(
    "condition",
    [
        {"http_request_method": {"values": ["POST"]}},
        {"source_ip": {"values": ["10.0.0.0/8"]}},
        {"host_header": {"values": ["h"]}, "path_pattern": {"values": ["/"]}},
    ],
)
def test_a_condition_the_local_alb_cannot_evaluate_raises(condition):
    with pytest.raises(alb.UnknownCondition):
        alb.conditions_match([condition], "h", "/", "")
