"""The function URL stand-in: an HTTP server on 127.0.0.1 that runs the ingest in-process.

For stacks with ``endpoint: functionUrl``. There is no listener rule in front of a function URL:
every request, whatever its host, path or query, becomes a payload format 2.0 event
(``local.function_url``) and reaches ``function.handler.handler``, which answers 404 for any path
other than its ``WEBHOOK_PATH``. The function's answer is turned into HTTP as the function URL
does; an exception, a timeout or an answer that is not JSON is 502. The function's logs go to
its log group (``local.lambda_runtime``), as behind the ALB stand-in.

Like the ALB stand-in, it is plain HTTP that reports itself as HTTPS on port 443
(``x-forwarded-proto``, ``x-forwarded-port``), the way the real URL is reached.
"""

from __future__ import annotations

import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Protocol
from urllib.parse import urlsplit

from local import function_url
from local.lambda_runtime import Handler
from local.listener import (
    FUNCTION_TIMEOUT_S,
    BodyError,
    FunctionSite,
    HttpStandIn,
    read_body,
    trace_id,
)

_log = logging.getLogger("local.function_url_endpoint")
# Lambda answers a function error through the URL with 502 and this text.
_FUNCTION_ERROR = (502, None, [("Content-Type", "text/plain")], function_url.FUNCTION_ERROR_BODY)
# What the URL's TLS termination reports (the values AWS's recorded events carry).
TLS_HEADERS = (
    ("x-amzn-tls-version", "TLSv1.3"),
    ("x-amzn-tls-cipher-suite", "TLS_AES_128_GCM_SHA256"),
)


class UrlSite(FunctionSite, Protocol):
    """What the function URL needs of the local stack besides the function: its id."""

    @property
    def function_url_id(self) -> str: ...


class FunctionUrlEndpoint(HttpStandIn):
    """A function URL (auth type ``NONE``) of the ingest; see the module docstring."""

    server_version = "lambda-url-stand-in"
    thread_name = "local-function-url"

    def __init__(
        self,
        local: UrlSite,
        *,
        invoke: Handler | None = None,
        timeout_s: float = FUNCTION_TIMEOUT_S,
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(local, invoke=invoke, timeout_s=timeout_s, environment=environment)
        self.site = local

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, str | None, list, bytes]:
        """The function URL's answer to one HTTP request: (status, None, headers, body)."""
        # The request target as sent: the raw path and query reach the event undecoded.
        raw_path, _, raw_query = request.path.partition("?")
        raw_path = urlsplit(raw_path).path or "/"  # an absolute-form target keeps its path only
        try:
            body = read_body(request, limit=function_url.MAX_BODY_BYTES)
        except BodyError as error:
            request.close_connection = True  # the rest of the body stays unread
            return error.status, None, [("Content-Type", "text/plain")], error.text.encode()

        client_ip = request.client_address[0]
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-port"}
        ]
        headers += [
            *TLS_HEADERS,
            ("x-amzn-trace-id", trace_id()),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-for", client_ip),
        ]
        request_id = str(uuid.uuid4())
        event = function_url.build_event(
            method=request.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            source_ip=client_ip,
            url_id=self.site.function_url_id,
            region=self.site.region,
            request_id=request_id,
            protocol=request.request_version,
        )
        started = time.monotonic()
        try:
            response = self.invoke(event, request_id=request_id)
        except Exception:
            return _FUNCTION_ERROR
        if time.monotonic() - started > self.timeout_s:
            return _FUNCTION_ERROR  # Lambda would have stopped the function
        try:
            status, answer_headers, answer_body = function_url.response_parts(response)
        except function_url.FunctionError as error:
            _log.warning("the function's response is not valid for its URL: %s", error)
            return _FUNCTION_ERROR
        answer_headers.append(("x-amzn-RequestId", request_id))
        return status, None, answer_headers, answer_body
