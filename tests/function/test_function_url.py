"""The ingest behind a Lambda function URL: payload format 2.0 in, its answer shape out.

The ALB shape is tested everywhere else; here the same decisions arrive as function URL events
(the fixture follows the example event in AWS's Lambda developer guide).
"""

from __future__ import annotations

import base64
import json

import pytest

from function import handler
from function.function_url import parse_url_event
from tests.function.function_testkit import (
    FIXTURE_DEPLOY_ID,
    TOKEN,
    load_event,
    reference_for,
    sign,
)

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

WEBHOOK_PATH = "/webhooks/netlify"


def url_event(**changes) -> dict:
    """The fixture event, signed over its (possibly changed) body."""
    event = load_event("function_url_event.json")
    event.update(changes)
    raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    event["headers"]["x-webhook-signature"] = sign(raw)
    return event


def assert_url_response(response: dict) -> dict:
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


@pytest.fixture
def url_world(world):
    world.configure(WEBHOOK_PATH=WEBHOOK_PATH)
    return world


def test_a_signed_function_url_event_is_queued_and_answered_in_its_shape(url_world, context):
    response = handler.handler(url_event(), context)
    body = assert_url_response(response)
    assert response["statusCode"] == 202, body
    messages = url_world.queued()
    assert {m["distribution_id"] for m in messages} == set(url_world.distribution_ids)
    assert {m["caller_reference"] for m in messages} == {reference_for()}
    assert {m["deploy_id"] for m in messages} == {FIXTURE_DEPLOY_ID}


def test_another_path_gets_404_before_anything_is_read(url_world, context, caplog):
    event = url_event(rawPath="/webhooks/other")
    event["requestContext"]["http"]["method"] = "GET"  # not even the method is looked at
    event["body"] = "not json"
    response = handler.handler(event, context)
    body = assert_url_response(response)
    assert (response["statusCode"], body["status"]) == (404, "not_found")
    assert url_world.queued_count() == 0


def test_the_path_is_compared_exactly(url_world, context):
    for path in ("/webhooks/netlify/", "/WEBHOOKS/netlify", "/webhooks/netlify%20"):
        response = handler.handler(url_event(rawPath=path), context)
        assert response["statusCode"] == 404, path


def test_the_last_token_value_wins_and_values_are_percent_decoded():
    request = parse_url_event(load_event("function_url_event.json"))
    assert request.query_bytes("token") == TOKEN.encode()
    assert request.query_text("source") == "netlify deploy hook"
    assert request.path == WEBHOOK_PATH and request.method == "POST"


def test_an_earlier_token_value_alone_is_refused(url_world, context):
    event = url_event(rawQueryString=f"token={TOKEN}&token=earlier-value")
    response = handler.handler(event, context)
    assert response["statusCode"] == 401
    assert url_world.queued_count() == 0


def test_a_base64_body_is_decoded_before_the_signature_check(url_world, context):
    plain = load_event("function_url_event.json")["body"]
    event = url_event(body=base64.b64encode(plain.encode()).decode(), isBase64Encoded=True)
    assert handler.handler(event, context)["statusCode"] == 202


def test_a_refusal_has_the_function_url_shape_too(url_world, context):
    event = url_event()
    event["requestContext"]["http"]["method"] = "PUT"
    response = handler.handler(event, context)
    assert assert_url_response(response)["status"] == "rejected"
    assert (response["statusCode"], response["headers"]["Allow"]) == (405, "POST")


def test_repeated_headers_arrive_comma_joined_and_a_joined_signature_is_refused(url_world, context):
    event = url_event()
    signature = event["headers"]["x-webhook-signature"]
    event["headers"]["x-webhook-signature"] = f"{signature},{signature}"
    assert handler.handler(event, context)["statusCode"] == 401


def test_without_webhook_path_set_any_path_reaches_the_checks(world, context):
    world.configure(WEBHOOK_PATH=None)
    assert handler.handler(url_event(rawPath="/anything"), context)["statusCode"] == 202


def test_alb_events_ignore_webhook_path(url_world, context):
    from tests.function.function_testkit import request

    event = request()
    event["path"] = "/somewhere/else"  # the ALB rule routed it: the function does not re-check
    assert handler.handler(event, context)["statusCode"] == 202


@pytest.mark.parametrize("path", ["webhooks", "/with blank", "/" + "a" * 200])
def test_a_bad_webhook_path_setting_answers_500_naming_it(world, context, path):
    world.configure(WEBHOOK_PATH=path)
    response = handler.handler(url_event(), context)
    body = assert_url_response(response)
    assert (response["statusCode"], body["variable"]) == (500, "WEBHOOK_PATH")
