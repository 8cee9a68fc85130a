"""A fake of the part of Netlify's REST API the reconciler reads, on 127.0.0.1.

Shapes from Netlify's OpenAPI spec (github.com/netlify/open-api, ``swagger.yml``): ``getSite``
(``GET /api/v1/sites/{site_id}``: a site object whose ``published_deploy`` is a Deploy object),
``listHooksBySiteId`` (``GET /api/v1/hooks?site_id=...``: a list of hook objects: ``id``,
``site_id``, ``type``, ``event``, ``data``, ``created_at``, ``updated_at``, ``disabled``) and
``enableHook`` (``POST /api/v1/hooks/{hook_id}/enable``: the hook). Errors are Netlify's
``{"code": <status>, "message": ...}``. A wrong or missing bearer token gets 401, another site
404.

Each test controls it: the published deploy, the hooks, and per operation a fault (a status,
a raw body, an answer delayed past any deadline, an answer trickled byte by byte, a dropped
connection). It records every request (method, path, query, Authorization header). Every wait
inside it ends when the test stops the server, and in any case after ``MAX_WAIT_S``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from function.netlify_api import GET_SITE, LIST_HOOKS

ENABLE_HOOK = "enableHook"
API_PREFIX = "/api/v1"
MAX_WAIT_S = 30.0
TRICKLE_EVERY_S = 0.2

# Values the fake's answers carry that must never reach a log, a summary or a metric.
SITE_PASSWORD = "site-password-must-never-be-logged-51c2"
SKEW_PROTECTION_TOKEN = "skew-token-must-never-be-logged-8e0d"


def iso(moment: datetime) -> str:
    """A time as Netlify writes it: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def minutes_ago(minutes: float) -> datetime:
    """A time ``minutes`` ago, in milliseconds like Netlify's times (so ``iso`` keeps it)."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def deploy_object(
    deploy_id: str,
    site_id: str,
    published_at: str | None,
    *,
    context: str = "production",
    created_at: str | None = None,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """A Deploy object with the fields the spec documents (values as Netlify writes them)."""
    created = created_at or published_at or iso(datetime.now(UTC))
    return {
        "id": deploy_id,
        "site_id": site_id,
        "user_id": "5d0a4b3c2e1f000123456789",
        "build_id": "6566f3c2b9a1d40008a7e1f0",
        "state": "ready",
        "name": "example-site",
        "url": "https://example.com",
        "ssl_url": "https://example.com",
        "admin_url": "https://app.netlify.com/sites/example-site",
        "deploy_url": f"http://{deploy_id}--example-site.netlify.app",
        "deploy_ssl_url": f"https://{deploy_id}--example-site.netlify.app",
        "screenshot_url": None,
        "review_id": None,
        "draft": False,
        "required": [],
        "required_functions": [],
        "error_message": None,
        "branch": "main",
        "commit_ref": "1f0c8e7d6b5a4938271605f4e3d2c1b0a9f8e7d6",
        "commit_url": "https://github.com/example/site/commit/1f0c8e7",
        "skipped": None,
        "created_at": created,
        "updated_at": updated_at or published_at or created,
        "published_at": published_at,
        "title": "Update the home page",
        "context": context,
        "locked": None,
        "review_url": None,
        "framework": "hugo",
        "skew_protection_token": SKEW_PROTECTION_TOKEN,
        "function_schedules": [],
    }


def site_object(site_id: str, published_deploy: dict[str, Any] | None) -> dict[str, Any]:
    """A site object with the fields the spec documents that matter here, and a password."""
    return {
        "id": site_id,
        "state": "current",
        "plan": "nf_team_dev",
        "name": "example-site",
        "custom_domain": "example.com",
        "domain_aliases": [],
        "password": SITE_PASSWORD,
        "notification_email": None,
        "url": "https://example.com",
        "ssl_url": "https://example.com",
        "admin_url": "https://app.netlify.com/sites/example-site",
        "screenshot_url": None,
        "created_at": "2024-03-01T10:00:00.000Z",
        "updated_at": iso(datetime.now(UTC)),
        "user_id": "5d0a4b3c2e1f000123456789",
        "session_id": None,
        "ssl": True,
        "force_ssl": True,
        "managed_dns": False,
        "deploy_url": "https://main--example-site.netlify.app",
        "published_deploy": published_deploy,
        "account_id": "5d0a4b3c2e1f000987654321",
        "account_name": "Example team",
        "account_slug": "example-team",
    }


def hook_object(
    hook_id: str,
    site_id: str,
    event: str,
    url: str,
    *,
    disabled: bool = False,
    hook_type: str = "url",
    signature_secret: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"url": url}
    if signature_secret:
        data["signature_secret"] = signature_secret
    return {
        "id": hook_id,
        "site_id": site_id,
        "type": hook_type,
        "event": event,
        "data": data,
        "created_at": "2024-03-01T10:00:00.000Z",
        "updated_at": "2024-03-01T10:00:00.000Z",
        "disabled": disabled,
    }


@dataclass
class Fault:
    """What one operation answers instead of its real answer (the first set field wins)."""

    status: int | None = None  # with Netlify's error body
    body: bytes | None = None  # raw 200 answer (malformed JSON, a wrong shape...)
    delay_s: float | None = None  # wait this long (or until stopped), then answer normally
    trickle: bool = False  # a 200 whose body arrives one byte every TRICKLE_EVERY_S
    drop: bool = False  # close the connection without answering


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class FakeNetlify:
    site_id: str
    token: str
    published_deploy: dict[str, Any] | None = None
    hooks: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The API's base URL, as NETLIFY_API_URL takes it."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{API_PREFIX}"

    def publish(self, deploy_id: str, published: datetime, **fields: Any) -> dict[str, Any]:
        """Make ``deploy_id`` the site's published deploy, published at ``published``."""
        self.published_deploy = deploy_object(deploy_id, self.site_id, iso(published), **fields)
        return self.published_deploy

    def fail(self, operation: str, fault: Fault | None) -> None:
        if fault is None:
            self.faults.pop(operation, None)
        else:
            self.faults[operation] = fault

    def requests_for(self, operation: str) -> list[Request]:
        with self._lock:
            made = list(self.requests)
        return [
            request for request in made if _operation(request.method, request.path) == operation
        ]

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds`` (at most MAX_WAIT_S); True when the server was stopped meanwhile."""
        return self._stopped.wait(min(seconds, MAX_WAIT_S))

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _operation(method: str, path: str) -> str | None:
    if not path.startswith(API_PREFIX + "/"):
        return None
    parts = path[len(API_PREFIX) + 1 :].split("/")
    if method == "GET" and len(parts) == 2 and parts[0] == "sites":
        return GET_SITE
    if method == "GET" and parts == ["hooks"]:
        return LIST_HOOKS
    if method == "POST" and len(parts) == 3 and parts[0] == "hooks" and parts[2] == "enable":
        return ENABLE_HOOK
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a delayed answer must not hold up the test's end
    fake: FakeNetlify


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is for the tests."""

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        server = self.server
        assert isinstance(server, _Server)
        fake = server.fake
        split = urlsplit(self.path)
        fake.record(
            Request(method, split.path, parse_qs(split.query), self.headers.get("Authorization"))
        )
        operation = _operation(method, split.path)
        if operation is None:
            self._json(404, {"code": 404, "message": "Not Found"})
            return
        if self.headers.get("Authorization") != f"Bearer {fake.token}":
            self._json(401, {"code": 401, "message": "Access Denied"})
            return
        fault = fake.faults.get(operation)
        if fault is not None and self._fault(fake, fault):
            return
        if operation == GET_SITE:
            if split.path.rsplit("/", 1)[-1] != fake.site_id:
                self._json(404, {"code": 404, "message": "Not Found"})
                return
            self._json(200, site_object(fake.site_id, fake.published_deploy))
        elif operation == LIST_HOOKS:
            if parse_qs(split.query).get("site_id") != [fake.site_id]:
                self._json(404, {"code": 404, "message": "Not Found"})
                return
            self._json(200, fake.hooks)
        else:  # ENABLE_HOOK
            hook_id = split.path.split("/")[-2]
            for hook in fake.hooks:
                if hook["id"] == hook_id:
                    hook["disabled"] = False
                    self._json(200, hook)
                    return
            self._json(404, {"code": 404, "message": "Not Found"})

    def _fault(self, fake: FakeNetlify, fault: Fault) -> bool:
        """Answer with the fault; False when the real answer should follow (after a delay)."""
        if fault.status is not None:
            self._json(fault.status, {"code": fault.status, "message": "fault injected"})
            return True
        if fault.body is not None:
            self._raw(200, fault.body)
            return True
        if fault.drop:
            self.close_connection = True
            self.connection.close()
            return True
        if fault.trickle:
            body = json.dumps(site_object(fake.site_id, fake.published_deploy)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            ends = time.monotonic() + MAX_WAIT_S
            try:
                for byte in body:
                    if fake.wait(TRICKLE_EVERY_S) or time.monotonic() > ends:
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:
                pass  # the client gave up: that is the point
            self.close_connection = True
            return True
        if fault.delay_s is not None and fake.wait(fault.delay_s):
            self.close_connection = True
            return True  # stopped while waiting: no answer
        return False

    def _json(self, status: int, document: object) -> None:
        self._raw(status, json.dumps(document).encode())

    def _raw(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client is gone (it gave up at its deadline)
