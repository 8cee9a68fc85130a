"""The ALB stand-in: an HTTP listener on 127.0.0.1 that runs the function in-process.

(``HttpStandIn`` is the HTTP server both stand-ins share: this ALB listener and the function URL
of ``local.function_url_endpoint``.)

A request that meets the stack's listener rule (``infra.rule.WebhookRule``, the same object the
Pulumi program turns into the real rule) becomes an ALB Lambda event (``local.alb``) and is
passed to ``function/handler.py``'s ``handler`` with a Lambda-like context; anything else gets
the HTTPS listener's default answer, 404. The function's log records go to the stack's
CloudWatch log group as Lambda's JSON log format writes them, so the runbook reads real records
(``local.lambda_runtime``, shared with the queue runner that runs the worker).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

from function import handler as handler_module
from infra.edge import NOT_FOUND_BODY
from infra.function import MEMORY_MB, TIMEOUT_SECONDS
from infra.rule import WebhookRule
from local import alb
from local.lambda_runtime import FunctionRuntime, Handler, LambdaContext

FUNCTION_TIMEOUT_S = TIMEOUT_SECONDS  # the function's timeout in the Pulumi program
_NOT_FOUND_BODY = NOT_FOUND_BODY.encode()  # the HTTPS listener's fixed-response default action
_log = logging.getLogger("local.listener")


class FunctionSite(Protocol):
    """What a stand-in needs of the local stack whose ingest it fronts (``LocalStack``)."""

    region: str

    @property
    def account_id(self) -> str: ...

    @property
    def function_name(self) -> str: ...

    @property
    def log_group_name(self) -> str: ...

    def client(self, service: str) -> Any: ...


class ListenerSite(FunctionSite, Protocol):
    """What the ALB's listener needs besides: the rule and the target group."""

    rule: WebhookRule

    @property
    def target_group_arn(self) -> str: ...


def _real_handler(event: Any, context: LambdaContext) -> Any:
    # Looked up at each call, so a test that patches ``handler.handler`` reaches it.
    return handler_module.handler(event, context)


def _reset_handler_state() -> None:
    reset = getattr(handler_module, "reset_state", None)
    if callable(reset):
        reset()


def trace_id() -> str:
    """An ``X-Amzn-Trace-Id`` value as the ALB adds it."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


class HttpStandIn:
    """An HTTP server on 127.0.0.1 (free port) in front of one in-process function.

    ``start()`` binds and serves, ``stop()`` shuts down; subclasses answer each request in
    ``handle`` (the ALB's listener here, a function URL in ``local.function_url_endpoint``).
    """

    server_version = "awselb/2.0"
    thread_name = "local-alb-listener"

    def __init__(
        self,
        local: FunctionSite,
        *,
        invoke: Handler | None = None,
        timeout_s: float = FUNCTION_TIMEOUT_S,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.local = local
        self.timeout_s = timeout_s
        self.environment = environment
        self._invoke = invoke
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.runtime: FunctionRuntime | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve; on failure, undo what was done (log capture, root level) and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.runtime = FunctionRuntime(
            function_name=self.local.function_name,
            log_group_name=self.local.log_group_name,
            region=self.local.region,
            account_id=self.local.account_id,
            logs_client=lambda: self.local.client("logs"),
            handler=self._invoke or _real_handler,
            timeout_s=self.timeout_s,
            memory_mb=MEMORY_MB,
            reset=None if self._invoke else _reset_handler_state,
            environment=self.environment,
        ).start()

        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_request_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=self.thread_name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the listener first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def invocations(self) -> int:
        return self.runtime.invocations if self.runtime else 0

    # -- one request -----------------------------------------------------------------------

    def invoke(self, event: dict, *, request_id: str | None = None) -> Any:
        """Run the function on ``event`` as Lambda would; returns its response (or raises)."""
        assert self.runtime is not None, "start() the listener first"
        return self.runtime.invoke(event, request_id=request_id)

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, str | None, list, bytes]:
        """The answer to one HTTP request: (status, reason or None, headers, body)."""
        raise NotImplementedError


class LocalListener(HttpStandIn):
    """The ALB's HTTPS listener and its rule in front of the ingest (see the module doc)."""

    def __init__(
        self,
        local: ListenerSite,
        *,
        multi_value_headers: bool = False,
        invoke: Handler | None = None,
        timeout_s: float = FUNCTION_TIMEOUT_S,
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(local, invoke=invoke, timeout_s=timeout_s, environment=environment)
        self.site = local
        self.multi_value_headers = multi_value_headers

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, str | None, list, bytes]:
        """The ALB's answer to one HTTP request: (status, reason, headers, body)."""
        split = urlsplit(request.path)
        path, raw_query = split.path, split.query
        try:
            body = read_body(request)
        except BodyError as error:
            request.close_connection = True  # the rest of the body stays unread
            return error.status, None, [("Content-Type", "text/plain")], error.text.encode()
        if not alb.rule_matches(self.site.rule, request.headers.get("Host"), path, raw_query):
            return 404, None, [("Content-Type", "text/plain")], _NOT_FOUND_BODY

        headers = list(request.headers.items())
        forwarded_for = request.headers.get("X-Forwarded-For")
        client_ip = request.client_address[0]
        headers = [(name, value) for name, value in headers if name.lower() != "x-forwarded-for"]
        headers += [
            ("x-amzn-trace-id", trace_id()),
            ("x-forwarded-for", f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip),
            ("x-forwarded-port", "443"),  # the stand-in plays the site's HTTPS:443 listener
            ("x-forwarded-proto", "https"),
        ]
        event = alb.build_event(
            method=request.command,
            path=path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            target_group_arn=self.site.target_group_arn,
            multi_value=self.multi_value_headers,
        )
        started = time.monotonic()
        try:
            response = self.invoke(event)
        except Exception:
            return bad_gateway()
        if time.monotonic() - started > self.timeout_s:
            return bad_gateway()  # Lambda would have stopped the function: the ALB says 502
        try:
            return alb.response_parts(response, multi_value=self.multi_value_headers)
        except alb.BadLambdaResponse as error:
            _log.warning("the function's response is not valid for the ALB: %s", error)
            return bad_gateway()


class BodyError(Exception):
    """A request body the ALB refuses: ``status`` and ``text`` are its answer."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


_BAD_REQUEST = "Bad Request"
_DIGITS = re.compile(r"[0-9]+")
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]+")
_TOO_LARGE = "Request Entity Too Large"


def read_body(request: BaseHTTPRequestHandler, limit: int = alb.MAX_BODY_BYTES) -> bytes:
    """The request body, framed by Content-Length or chunked transfer coding (RFC 9112).

    A Content-Length that is not a decimal number, a transfer coding other than a final
    ``chunked`` and a malformed chunk are answered 400, as the ALB answers malformed requests;
    a body over ``limit`` 413. The ALB docs do not say how a chunked request to a Lambda target
    is handled; HTTP/1.1 requires a server to accept it, so the stand-in reads it whole.
    """
    transfer_encoding = request.headers.get_all("Transfer-Encoding") or []
    if transfer_encoding:
        codings = [c.strip().lower() for value in transfer_encoding for c in value.split(",")]
        if codings[-1] != "chunked" or request.headers.get("Content-Length") is not None:
            raise BodyError(400, _BAD_REQUEST)
        return _read_chunked(request.rfile, limit)
    lengths = request.headers.get_all("Content-Length") or []
    if not lengths:
        return b""
    if len(set(lengths)) != 1 or not _DIGITS.fullmatch(lengths[0].strip()):
        raise BodyError(400, _BAD_REQUEST)
    length = int(lengths[0])
    if length > limit:
        raise BodyError(413, _TOO_LARGE)
    body = request.rfile.read(length) if length else b""
    if len(body) != length:
        raise BodyError(400, _BAD_REQUEST)
    return body


def _read_chunked(rfile: Any, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_line = rfile.readline(1024)
        size_text = size_line.split(b";", 1)[0].strip()  # chunk extensions are ignored
        if not _HEX_DIGITS.fullmatch(size_text) or not size_line.endswith(b"\n"):
            raise BodyError(400, _BAD_REQUEST)
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise BodyError(413, _TOO_LARGE)
        chunk = rfile.read(size)
        if len(chunk) != size or rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BodyError(400, _BAD_REQUEST)
        body += chunk
    while True:  # trailer fields, up to the empty line
        line = rfile.readline(8192)
        if not line.strip():
            if not line:
                raise BodyError(400, _BAD_REQUEST)
            return bytes(body)


def bad_gateway() -> tuple[int, str | None, list, bytes]:
    return 502, None, [("Content-Type", "text/plain")], b"Bad Gateway"


def _make_request_handler(listener: HttpStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = listener.server_version

        def version_string(self) -> str:
            return self.server_version

        def _answer(self) -> None:
            try:
                status, reason, headers, body = listener.handle(self)
            except Exception:
                _log.exception("local listener failed")
                status, reason, headers, body = bad_gateway()
            if reason is None:
                try:
                    reason = HTTPStatus(status).phrase
                except ValueError:
                    reason = ""
            self.send_response(status, reason)
            for name, value in headers:
                if name.lower() in {"content-length", "connection", "transfer-encoding"}:
                    continue
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s %s", self.address_string(), format % args)

    return Handler
