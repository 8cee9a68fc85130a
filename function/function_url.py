"""A Lambda function URL's side of the conversation: reading its event, shaping answers.

Standard library only. A function URL sends the API Gateway payload format 2.0: the method in
``requestContext.http.method``, ``rawPath``, ``rawQueryString`` exactly as sent (not decoded:
the function decodes it, the last value of a repeated key winning, as for the ALB), lowercase
``headers`` with repeated headers comma-joined, ``cookies``, and a body that is base64 when
``isBase64Encoded``. The answer is ``statusCode``, ``headers``, ``body`` and
``isBase64Encoded``: no ``statusDescription``, no ``multiValueHeaders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from .webhook_alb import AlbRequest, Answer, answer_body_text, body_bytes


def is_function_url_event(event: object) -> bool:
    """Payload format 2.0 (a function URL), as opposed to an ALB event."""
    return isinstance(event, Mapping) and event.get("version") == "2.0"


def _raw_query(raw: object) -> dict[str, str]:
    """``{decoded name: raw value}`` from ``rawQueryString``; the last value of a key wins."""
    query: dict[str, str] = {}
    if not isinstance(raw, str) or not raw:
        return query
    for pair in raw.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        query[unquote(name, errors="replace")] = value
    return query


def parse_url_event(event: object) -> AlbRequest:
    """Read a function URL event; never raises, whatever the event holds."""
    if not isinstance(event, Mapping):
        event = {}
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    method = http.get("method") if isinstance(http, Mapping) else None
    headers = event.get("headers")
    raw_path = event.get("rawPath")
    return AlbRequest(
        method=method if isinstance(method, str) else "",
        multi_value=False,
        headers={
            name.lower(): value
            for name, value in (headers.items() if isinstance(headers, Mapping) else ())
            if isinstance(name, str) and isinstance(value, str)
        },
        raw_query=_raw_query(event.get("rawQueryString")),
        body=body_bytes(event.get("body"), event.get("isBase64Encoded") is True),
        path=raw_path if isinstance(raw_path, str) else "",
    )


def respond_url(answer: Answer) -> dict:
    """The one place that shapes a response the way a function URL expects it."""
    return {
        "statusCode": answer.status_code,
        "headers": {
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            **answer.headers,
        },
        "body": answer_body_text(answer),
        "isBase64Encoded": False,
    }
