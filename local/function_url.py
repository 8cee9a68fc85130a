"""What a Lambda function URL does with a request, as pure functions: the event, the answer.

Facts (Lambda developer guide, "Invoking Lambda function URLs", request and response payloads;
the API Gateway payload format 2.0 they follow):

- Event: ``version`` "2.0", ``routeKey`` "$default", ``rawPath``, ``rawQueryString`` (exactly as
  sent: not decoded), ``cookies`` (every cookie of the request's ``Cookie`` headers, which are
  not repeated in ``headers``), ``headers`` (names lowercased, repeated headers comma-joined),
  ``queryStringParameters`` (decoded, repeated keys comma-joined), ``requestContext``
  (``accountId`` "anonymous" with the auth type ``NONE``, ``apiId``/``domainPrefix`` the URL's
  id, ``domainName`` ``<url-id>.lambda-url.<region>.on.aws``, ``http`` {``method``, ``path``,
  ``protocol``, ``sourceIp``, ``userAgent``}, ``requestId``, ``routeKey``/``stage`` "$default",
  ``time`` like ``12/Mar/2020:19:03:58 +0000`` and ``timeEpoch`` in milliseconds), ``body`` and
  ``isBase64Encoded``. Fields the URL does not use (``pathParameters``, ``stageVariables``,
  ``authorizer`` without IAM auth) are left out, as in the events AWS's Powertools record from
  real function URLs; so are ``cookies``, ``queryStringParameters`` and ``body`` when the
  request has none.
- The body: the docs say only that a binary body is base64-encoded. As LocalStack's function URL
  emulation reads it, a body is text when its media type is ``text/*`` or names JSON or XML and
  it is valid UTF-8; anything else (no ``Content-Type`` included) is base64.
- Answer: a JSON object with ``statusCode`` is the response (``headers``, ``body``,
  ``isBase64Encoded``, and ``cookies``, each of which becomes a ``Set-Cookie`` header). Any other
  valid JSON (an object without ``statusCode``, a string, a list...) is answered 200 with
  ``content-type: application/json`` and that JSON as the body. A function error (an exception,
  a timeout, an answer that is not JSON) is 502.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

# Lambda's payload limit for a synchronous invocation, which a function URL request is.
MAX_BODY_BYTES = 6 * 1024 * 1024
FUNCTION_ERROR_BODY = b"Internal Server Error"
_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S +0000"


def url_id(stack: str, project: str) -> str:
    """A function URL id for the stack: 32 lowercase letters and digits, like Lambda's."""
    return hashlib.sha256(f"{project}:{stack}:function-url".encode()).hexdigest()[:32]


def url_domain(url_id_value: str, region: str) -> str:
    """The function URL's host name: ``<url-id>.lambda-url.<region>.on.aws``."""
    return f"{url_id_value}.lambda-url.{region}.on.aws"


def is_text_body(content_type: str | None, body: bytes) -> bool:
    """Whether the function URL passes this body as text (else base64); see the module doc."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not (media_type.startswith("text/") or "json" in media_type or "xml" in media_type):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def split_cookies(values: Iterable[str]) -> list[str]:
    """``a=1; b=2`` (one or more ``Cookie`` header values) -> ``["a=1", "b=2"]``."""
    return [part.strip() for value in values for part in value.split(";") if part.strip()]


def comma_joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{name: value}`` with the values of a repeated name joined by commas, in order."""
    joined: dict[str, list[str]] = {}
    for name, value in pairs:
        joined.setdefault(name, []).append(value)
    return {name: ",".join(values) for name, values in joined.items()}


def request_time(epoch_s: float) -> tuple[str, int]:
    """``requestContext.time`` and ``timeEpoch`` for a request received at ``epoch_s``."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime(_TIME_FORMAT), round(epoch_s * 1000)


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    url_id: str,
    region: str,
    request_id: str,
    protocol: str = "HTTP/1.1",
    received_at: float | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event a function URL sends for this request.

    ``headers`` are (name, value) pairs in arrival order, repeats allowed, including those the
    function URL adds (``x-forwarded-*``, ``x-amzn-trace-id``...).
    """
    pairs = [(name.lower(), value) for name, value in headers]
    cookies = split_cookies(value for name, value in pairs if name == "cookie")
    header_map = comma_joined((name, value) for name, value in pairs if name != "cookie")
    query = comma_joined(parse_qsl(raw_query, keep_blank_values=True))
    when, epoch_ms = request_time(time.time() if received_at is None else received_at)
    domain = url_domain(url_id, region)

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = header_map
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": "anonymous",
        "apiId": url_id,
        "domainName": domain,
        "domainPrefix": url_id,
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": header_map.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": when,
        "timeEpoch": epoch_ms,
    }
    encoded = False
    if body:
        if is_text_body(header_map.get("content-type"), body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"], encoded = base64.b64encode(body).decode("ascii"), True
    event["isBase64Encoded"] = encoded
    return event


class FunctionError(ValueError):
    """The function's answer cannot become an HTTP answer: the function URL says 502."""


def response_parts(response: object) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of the HTTP answer the function URL makes from ``response``."""
    try:
        serialized = json.dumps(response)
    except (TypeError, ValueError) as error:  # Lambda could not serialize it: a function error
        raise FunctionError(f"the response is not JSON: {error}") from None
    if not isinstance(response, dict) or "statusCode" not in response:
        return 200, [("content-type", "application/json")], serialized.encode("utf-8")

    status = response["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FunctionError(f"statusCode {status!r} is not an HTTP status")
    headers_value = response.get("headers") or {}
    if not isinstance(headers_value, dict):
        raise FunctionError("headers must be an object")
    headers = [(str(name), str(value)) for name, value in headers_value.items()]
    cookies = response.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise FunctionError("cookies must be a list of strings")
    headers += [("set-cookie", cookie) for cookie in cookies]

    raw_body = response.get("body")
    if raw_body is None:
        body = b""
    elif not isinstance(raw_body, str):
        body = json.dumps(raw_body).encode("utf-8")  # an object body is sent as its JSON
    elif response.get("isBase64Encoded") is True:
        try:
            body = base64.b64decode(raw_body, validate=True)
        except ValueError as error:
            raise FunctionError(f"body is not base64: {error}") from None
    else:
        body = raw_body.encode("utf-8", errors="replace")  # a lone surrogate cannot be sent
    return status, headers, body
