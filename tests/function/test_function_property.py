"""Property: whatever arrives, the answer is a well-formed ALB response, and CloudFront gets an
invalidation only for an authenticated, valid notification.

The oracle below decides "authenticated" and "valid" from how the request was generated, not
with the handler's code.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from function import handler
from tests.function.function_testkit import TOKEN, assert_alb_response, sign

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

# Weighted towards what gets past the first checks, so later decisions are exercised too.
METHODS = st.sampled_from(["POST"] * 8 + ["GET", "PUT", "post", "HEAD", "random"])
EVENT_NAMES = st.sampled_from([None, "deploy_created", "deploy_created", "deploy_building"])
# Query keys that never decode to the two the handler reads, so the oracle stays simple.
OTHER_KEYS = st.text(min_size=1, max_size=8).filter(lambda k: unquote(k) not in {"token", "dist"})
TEXT_VALUES = st.text(max_size=24)
CONTROLLED_HEADERS = {"x-webhook-signature", "x-netlify-event"}


@st.composite
def requests(draw, distribution_ids):
    """(event, expectation) pairs: an ALB event and what the oracle says must happen."""
    multi_value = draw(st.booleans())
    method = draw(METHODS)
    if method == "random":
        method = draw(st.text(max_size=6))

    token_kind = draw(
        st.sampled_from(["right"] * 4 + ["right-encoded", "upper", "absent", "random"])
    )
    token = {
        "right": TOKEN,
        "right-encoded": quote(TOKEN, safe=""),
        "upper": TOKEN.upper(),
        "absent": None,
        "random": draw(TEXT_VALUES),
    }[token_kind]
    token_ok = token_kind in {"right", "right-encoded"} or (
        token_kind == "random" and unquote(token) == TOKEN
    )

    body_kind = draw(st.sampled_from(["deploy"] * 5 + ["json", "text", "empty"]))
    deploy = None
    if body_kind == "deploy":
        deploy = {
            "id": draw(st.text(min_size=1, max_size=30)),
            "state": draw(st.sampled_from(["ready"] * 4 + ["building", "error"])),
            "context": draw(
                st.sampled_from(["production"] * 4 + ["deploy-preview", "branch-deploy"])
            ),
            "site_id": "site-1",
        }
        body = json.dumps(deploy).encode()
    elif body_kind == "json":
        body = json.dumps(draw(st.dictionaries(st.text(max_size=5), TEXT_VALUES, max_size=3)))
        body = body.encode()
    elif body_kind == "text":
        body = draw(st.text(max_size=60)).encode()
    else:
        body = b""
    is_base64 = draw(st.booleans())

    signature_kind = draw(st.sampled_from(["valid"] * 5 + ["wrong-secret", "absent", "junk"]))
    signature = {
        "valid": sign(body),
        "wrong-secret": sign(body, secret="not-the-jws-secret-0123456789abcdef"),
        "absent": None,
        "junk": draw(st.text(max_size=40)),
    }[signature_kind]
    signature_ok = signature_kind == "valid"

    event_name = draw(EVENT_NAMES)
    dist_kind = draw(st.sampled_from(["absent", "absent", "known", "unknown"]))
    dist = {
        "absent": None,
        "known": draw(st.sampled_from(distribution_ids)),
        "unknown": "EUNKNOWN0",
    }[dist_kind]

    headers = draw(st.dictionaries(st.text(min_size=1, max_size=10), TEXT_VALUES, max_size=3))
    headers = {k: v for k, v in headers.items() if k.lower() not in CONTROLLED_HEADERS}
    if event_name is not None:
        headers["X-Netlify-Event"] = event_name
    if signature is not None:
        headers[draw(st.sampled_from(["x-webhook-signature", "X-Webhook-Signature"]))] = signature

    query = draw(st.dictionaries(OTHER_KEYS, TEXT_VALUES, max_size=3))
    if token is not None:
        query["token"] = token
    if dist is not None:
        query["dist"] = dist

    alb_event = {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:x"}},
        "httpMethod": method,
        "path": "/hook",
        "isBase64Encoded": is_base64,
        "body": base64.b64encode(body).decode() if is_base64 else body.decode(),
    }
    if multi_value:
        alb_event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        alb_event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    else:
        alb_event["headers"] = headers
        alb_event["queryStringParameters"] = query

    authenticated = method == "POST" and token_ok and signature_ok
    acted_on = (
        authenticated
        and deploy is not None
        and deploy["state"] == "ready"
        and deploy["context"] == "production"
        and event_name in {None, "deploy_created"}
        and dist_kind != "unknown"
    )
    expected_count = 0
    if acted_on:
        expected_count = 1 if dist_kind == "known" else len(distribution_ids)
    return alb_event, authenticated, expected_count


@pytest.mark.timeout(120)
def test_any_request_gets_an_alb_answer_and_only_valid_ones_are_queued(world, context):
    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    def check(data):
        alb_event, authenticated, expected_count = data.draw(requests(world.distribution_ids))
        before = world.queued_count()
        response = handler.handler(alb_event, context)
        body = assert_alb_response(response, "multiValueHeaders" in alb_event)
        event(f"status {response['statusCode']}")  # --hypothesis-show-statistics
        queued = world.queued_count() - before
        assert queued == expected_count, body
        assert (response["statusCode"] == 202) == (expected_count > 0), body
        if not authenticated:
            # The first refusals say nothing about the body or the deploy.
            assert response["statusCode"] in {405, 401}, body

    check()
