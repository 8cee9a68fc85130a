"""Helpers for the function's tests: ALB events from tests/events/, Netlify signatures, contexts.

Signatures are made with PyJWT, independently of the handler's own verification code.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path

import jwt

EVENTS = Path(__file__).resolve().parent.parent / "events"

# The token the fixture events carry (tests/events/alb_single_value.json and friends).
TOKEN = "nEt1ify-Hook_T0ken-42x"
# tests/events/alb_encoded_query.json carries this token percent-encoded, as the ALB passes it.
ENCODED_FIXTURE_TOKEN = "Enc0ded_Tok3n-with-escapes"
JWS_SECRET = "jws-secret-for-tests-9d2c1a-0f8e7d6c5b4a"
FIXTURE_DEPLOY_ID = "6566f3c2b9a1d40008a7e1f3"
FIXTURE_SITE_ID = "4f1b9c2e-8d3a-4e6f-9b7c-2a1d5e8f0c3b"
BUILD_LOG_TOKEN = "BUILD-LOG-TOKEN-must-never-be-logged-7f3a9c"
SECRETS_PARAMETER = "/netlify-webhook/example-site/secrets"

# The least CloudFront (moto) needs to create a distribution for the tests.
DISTRIBUTION_CONFIG = {
    "Comment": "test distribution",
    "Enabled": True,
    "Origins": {
        "Quantity": 1,
        "Items": [
            {
                "Id": "netlify",
                "DomainName": "example-site.netlify.app",
                "CustomOriginConfig": {
                    "HTTPPort": 80,
                    "HTTPSPort": 443,
                    "OriginProtocolPolicy": "https-only",
                },
            }
        ],
    },
    "DefaultCacheBehavior": {"TargetOriginId": "netlify", "ViewerProtocolPolicy": "https-only"},
}


def load_event(name: str) -> dict:
    """A fresh copy of one of the ALB event fixtures."""
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


def is_multi_value(event: dict) -> bool:
    return "multiValueHeaders" in event


def event_body(event: dict) -> bytes:
    """The bytes the sender sent (what Netlify hashed)."""
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def with_body(event: dict, body: bytes | str) -> dict:
    raw = body.encode() if isinstance(body, str) else body
    event["body"] = base64.b64encode(raw).decode() if event.get("isBase64Encoded") else raw.decode()
    return event


def set_header(event: dict, name: str, value: str | None) -> dict:
    """Set (or with None remove) a header, in whichever mapping the event uses."""
    key = "multiValueHeaders" if is_multi_value(event) else "headers"
    headers = event.setdefault(key, {})
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    if value is not None:
        headers[name] = [value] if is_multi_value(event) else value
    return event


def set_query(event: dict, name: str, raw_value: str | None) -> dict:
    """Set a query parameter's raw (still percent-encoded) value, as the ALB would pass it."""
    key = "multiValueQueryStringParameters" if is_multi_value(event) else "queryStringParameters"
    query = event.get(key) or {}
    if raw_value is None:
        query.pop(name, None)
    else:
        query[name] = [raw_value] if is_multi_value(event) else raw_value
    event[key] = query
    return event


def deploy(**overrides) -> dict:
    """The fixture's Netlify Deploy object, with some fields changed."""
    document = json.loads(event_body(load_event("alb_single_value.json")))
    document.update(overrides)
    return document


def sign(body: bytes, secret: str = JWS_SECRET, algorithm: str = "HS256", **claims) -> str:
    """A Netlify-style JWS for ``body``, made with PyJWT."""
    payload = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest(), **claims}
    return jwt.encode(payload, secret, algorithm=algorithm)


def signed(event: dict, secret: str = JWS_SECRET, **claims) -> dict:
    """The event with a valid X-Webhook-Signature over its current body."""
    return set_header(event, "x-webhook-signature", sign(event_body(event), secret, **claims))


def request(name: str = "alb_single_value.json", body: dict | bytes | None = None, **query):
    """A signed fixture event, optionally with another deploy body and extra query values."""
    event = load_event(name)
    if body is not None:
        with_body(event, body if isinstance(body, bytes) else json.dumps(body).encode())
    for key, value in query.items():
        set_query(event, key, value)
    return signed(event)


def answer_body(response: dict) -> dict:
    return json.loads(response["body"])


class FakeContext:
    """A Lambda context whose clock only moves when the handler sleeps (no real waiting)."""

    def __init__(self, remaining_ms: int = 30_000, request_id: str = "req-0001") -> None:
        self.aws_request_id = request_id
        self.remaining_ms = remaining_ms
        self.sleeps: list[float] = []

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_ms)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.remaining_ms -= seconds * 1000


def assert_alb_response(response: object, multi_value: bool) -> dict:
    """Check the ALB response shape; returns the decoded JSON body."""
    assert isinstance(response, dict)
    header_key = "multiValueHeaders" if multi_value else "headers"
    assert set(response) == {"statusCode", "statusDescription", "isBase64Encoded", "body"} | {
        header_key
    }
    code = response["statusCode"]
    assert isinstance(code, int) and 200 <= code <= 599
    assert response["statusDescription"].startswith(f"{code} ")
    assert response["isBase64Encoded"] is False
    headers = response[header_key]
    content_type = headers["Content-Type"]
    assert content_type == (["application/json"] if multi_value else "application/json")
    if multi_value:
        assert all(
            isinstance(v, list) and all(isinstance(i, str) for i in v) for v in headers.values()
        )
    else:
        assert all(isinstance(v, str) for v in headers.values())
    body = json.loads(response["body"])
    assert isinstance(body, dict)
    assert isinstance(body["status"], str) and isinstance(body["reason"], str)
    return body


def reference_for(
    document: dict | None = None, paths=("/*",), event: str | None = "deploy_created"
) -> str:
    """The caller reference the ingest derives for a Deploy object (the fixture's by default)."""
    from function.webhook_settings import caller_reference

    document = document if document is not None else deploy()
    return caller_reference(
        document["id"],
        paths,
        event=event,
        published_at=document.get("published_at"),
        updated_at=document.get("updated_at"),
    )
