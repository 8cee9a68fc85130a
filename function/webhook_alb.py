"""The Application Load Balancer's side of the conversation: reading its event, shaping answers.

Standard library only. Two facts of the ALB shape everything here:

- With the target group's multi-value option the event carries ``multiValueHeaders`` and
  ``multiValueQueryStringParameters`` instead of ``headers`` and ``queryStringParameters``, and
  the response must then use ``multiValueHeaders`` too.
- The ALB does not URL-decode query strings: ``?token=a%2Bb`` arrives as ``"a%2Bb"``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote, unquote_to_bytes

# The ALB passes at most 1 MB of request body to Lambda and accepts at most 1 MB of response.
MAX_BODY_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 1000 * 1000


def _last_values(mapping: object, multi_value: bool) -> dict[str, str]:
    """``{name: value}`` from the event's single- or multi-value mapping; the last value wins.

    Anything that is not a string (a malformed event) is skipped rather than trusted.
    """
    result: dict[str, str] = {}
    if not isinstance(mapping, Mapping):
        return result
    for name, value in mapping.items():
        if multi_value:
            strings = (
                [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
            )
            value = strings[-1] if strings else None
        if isinstance(name, str) and isinstance(value, str):
            result[name] = value
    return result


@dataclass(frozen=True)
class AlbRequest:
    """What the function needs from an ALB event, with the ALB's quirks already undone."""

    method: str
    multi_value: bool
    # Lowercased names; the last value of a repeated header.
    headers: dict[str, str] = field(default_factory=dict)
    # Percent-decoded names mapped to the *raw* (still encoded) last value: the token is decoded
    # to bytes for the comparison, everything else to text with ``query_text``.
    raw_query: dict[str, str] = field(default_factory=dict)
    # The body as the client sent it (base64 undone); None when it could not be decoded.
    body: bytes | None = b""
    # The URL path, for a function URL event (no ALB rule routed it); None for ALB events.
    path: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_text(self, name: str) -> str | None:
        raw = self.raw_query.get(name)
        return None if raw is None else unquote(raw, errors="replace")

    def query_bytes(self, name: str) -> bytes | None:
        raw = self.raw_query.get(name)
        # surrogatepass: a lone UTF-16 surrogate in the value must not raise; it never matches.
        return None if raw is None else unquote_to_bytes(raw.encode("utf-8", "surrogatepass"))


def parse_event(event: object) -> AlbRequest:
    """Read an ALB event; never raises, whatever the event holds."""
    if not isinstance(event, Mapping):
        event = {}
    multi_value = "multiValueHeaders" in event
    method = event.get("httpMethod")
    if multi_value:
        headers = _last_values(event.get("multiValueHeaders"), True)
        query = _last_values(event.get("multiValueQueryStringParameters"), True)
    else:
        headers = _last_values(event.get("headers"), False)
        query = _last_values(event.get("queryStringParameters"), False)
    return AlbRequest(
        method=method if isinstance(method, str) else "",  # methods are case-sensitive
        multi_value=multi_value,
        headers={name.lower(): value for name, value in headers.items()},
        raw_query={unquote(name, errors="replace"): value for name, value in query.items()},
        body=body_bytes(event.get("body"), event.get("isBase64Encoded") is True),
    )


def body_bytes(body: object, is_base64: bool) -> bytes | None:
    """The body's bytes (base64 undone), b"" when absent, None when it cannot be decoded."""
    if body is None:
        return b""
    if not isinstance(body, str):
        return None
    try:
        return base64.b64decode(body, validate=True) if is_base64 else body.encode("utf-8")
    except (binascii.Error, ValueError):  # bad base64, or text that is not encodable
        return None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as a value: decisions return these instead of raising."""

    status_code: int
    status: str
    reason: str
    details: dict = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict:
        return {"status": self.status, "reason": self.reason, **self.details}


def answer_body_text(answer: Answer) -> str:
    """The answer's JSON body, kept under the 1 MB response limit of the ALB and function URLs.

    Values echoed from a request are bounded where they are read; only a huge path list from
    the settings could get near the limit, so that goes first, then the details.
    """
    body = json.dumps(answer.body(), separators=(",", ":"), default=str)
    if len(body.encode("utf-8", "surrogatepass")) > MAX_RESPONSE_BYTES:
        body = json.dumps(_without_path_lists(answer.body()), separators=(",", ":"), default=str)
    if len(body.encode("utf-8", "surrogatepass")) > MAX_RESPONSE_BYTES:
        body = json.dumps({"status": answer.status, "reason": answer.reason[:1000]})
    return body


def respond(answer: Answer, multi_value: bool) -> dict:
    """The one place that shapes a response the way the ALB expects it."""
    body = answer_body_text(answer)
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        **answer.headers,
    }
    response = {
        "statusCode": answer.status_code,
        "statusDescription": f"{answer.status_code} {HTTPStatus(answer.status_code).phrase}",
        "isBase64Encoded": False,
        "body": body,
    }
    if multi_value:
        response["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    else:
        response["headers"] = headers
    return response


def _without_path_lists(body: dict) -> dict:
    items = body.get("invalidations") or []
    trimmed = [
        {**item, "paths": None, "path_count": len(item.get("paths") or ())} for item in items
    ]
    return {**body, "invalidations": trimmed}
