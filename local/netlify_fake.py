"""A fake of the few Netlify API endpoints the reconciler and the runbook call, on 127.0.0.1.

Shapes from Netlify's OpenAPI spec (github.com/netlify/open-api ``swagger.yml``, base path
``/api/v1``, bearer-token auth):

- ``GET /sites/{site_id}`` (``getSite``): the site, with ``published_deploy`` (a Deploy object);
- ``GET /hooks?site_id=`` (``listHooksBySiteId``): the site's hooks, each ``{id, site_id, type,
  event, data, created_at, updated_at, disabled}``;
- ``POST /hooks?site_id=`` (``createHookBySiteId``): 201 and the new hook;
- ``GET|PUT /hooks/{hook_id}`` (``getHook``, ``updateHook``): 200 and the hook;
- ``DELETE /hooks/{hook_id}`` (``deleteHook``): 204, no body;
- ``POST /hooks/{hook_id}/enable`` (``enableHook``): 200 and the hook, ``disabled: false``.

Errors use the spec's ``error`` object ``{"code": <status>, "message": "..."}``: 401 without
the right ``Authorization: Bearer <token>``, 404 for an unknown site, hook or path, 422 for a
body or query the operation cannot take.

Netlify's own behaviour that the fake plays through methods, not HTTP (tests and the demo drive
them): ``publish`` (a deploy becomes the site's published deploy; nobody is told),
``notify`` (the deploy notification Netlify sends each enabled hook of an event: the Deploy
object as JSON, ``X-Netlify-Event``, and the ``X-Webhook-Signature`` JWS (HS256, claims ``iss``
and ``sha256``) when the hook has a secret), ``disable_hook`` (Netlify switching a hook off),
and ``fail_next`` (the next calls answer an error status, e.g. 429 or 503). Every request is
recorded in ``requests`` (method, path with query, status): never a header, so never the token.

Hook URLs point at the local stand-ins (``http://127.0.0.1:<port>``). The ALB stand-in routes by
Host, as the ALB does, so ``route_host`` tells the fake which Host a delivery to such an address
carries: what DNS would give the real domain.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import jwt

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024
_log = logging.getLogger("local.netlify_fake")


def netlify_time(moment: datetime) -> str:
    """Netlify's timestamps: ISO 8601 in UTC with milliseconds, ``2024-05-01T12:34:56.789Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_id() -> str:
    """A Netlify object id: 24 hexadecimal digits."""
    return secrets.token_hex(12)


def deploy_object(
    site_id: str,
    site_name: str,
    *,
    deploy_id: str | None = None,
    published_at: datetime | None = None,
    build_seconds: int = 42,
    title: str = "Local deploy",
    context: str = "production",
) -> dict[str, Any]:
    """A Deploy object as Netlify's API and deploy notifications carry it (``state: ready``).

    ``published_at`` defaults to now; the deploy was created ``build_seconds`` earlier. No
    ``log_access_attributes``: that field carries a log token the fake has no use for.
    """
    deploy_id = deploy_id or new_id()
    published = published_at or datetime.now(UTC)
    created = published - timedelta(seconds=build_seconds)
    commit = secrets.token_hex(20)
    return {
        "id": deploy_id,
        "site_id": site_id,
        "user_id": new_id(),
        "build_id": new_id(),
        "state": "ready",
        "name": site_name,
        "url": f"https://{site_name}.netlify.app",
        "ssl_url": f"https://{site_name}.netlify.app",
        "admin_url": f"https://app.netlify.com/projects/{site_name}",
        "deploy_url": f"http://{deploy_id}--{site_name}.netlify.app",
        "deploy_ssl_url": f"https://{deploy_id}--{site_name}.netlify.app",
        "screenshot_url": None,
        "review_id": None,
        "draft": False,
        "required": [],
        "required_functions": [],
        "error_message": None,
        "branch": "main",
        "commit_ref": commit,
        "commit_url": f"https://github.com/example/{site_name}/commit/{commit}",
        "skipped": None,
        "created_at": netlify_time(created),
        "updated_at": netlify_time(published),
        "published_at": netlify_time(published),
        "title": title,
        "context": context,
        "locked": None,
        "review_url": None,
        "framework": "unknown",
    }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with its query (site ids are not secret)
    status: int


@dataclass(frozen=True)
class Delivery:
    """One deploy notification the fake sent, and the answer it got."""

    hook_id: str
    event: str
    endpoint: str  # the hook's URL without its query (no token)
    status: int | None  # None: no HTTP answer (``error`` says why)
    body: Any = None  # the answer, parsed when it is JSON
    error: str | None = None


def netlify_signature(body: bytes, secret: str) -> str:
    """Netlify's ``X-Webhook-Signature``: an HS256 JWT with ``iss`` and the body's SHA-256."""
    claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
    return jwt.encode(claims, secret, algorithm="HS256")


class NetlifyFake:
    """The fake API: ``start()``, ``api_url``, ``token``; state changed by methods or HTTP."""

    def __init__(self, token: str | None = None) -> None:
        # The bearer token the fake accepts (a personal access token stand-in, secret).
        self.token = token or f"nfp_local_{secrets.token_urlsafe(24)}"
        self.requests: list[RecordedRequest] = []
        self._sites: dict[str, dict[str, Any]] = {}
        self._hooks: dict[str, dict[str, Any]] = {}
        self._failures: list[int] = []
        self._hosts: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> NetlifyFake:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="local-netlify-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> NetlifyFake:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<port>/api/v1``: what ``NETLIFY_API_URL`` points at."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{API_PREFIX}"

    # -- Netlify's side, driven by tests and the demo --------------------------------------

    def add_site(self, site_id: str, name: str) -> dict[str, Any]:
        """A site with a first production deploy published now (a copy is returned).

        Adding a known site again changes nothing (two stacks may watch one site).
        """
        with self._lock:
            if site_id not in self._sites:
                now = datetime.now(UTC)
                self._sites[site_id] = {
                    "id": site_id,
                    "state": "current",
                    "plan": "nf_team_dev",
                    "name": name,
                    "custom_domain": None,
                    "domain_aliases": [],
                    "url": f"https://{name}.netlify.app",
                    "ssl_url": f"https://{name}.netlify.app",
                    "admin_url": f"https://app.netlify.com/projects/{name}",
                    "screenshot_url": None,
                    "created_at": netlify_time(now - timedelta(days=30)),
                    "updated_at": netlify_time(now),
                    "user_id": new_id(),
                    "ssl": True,
                    "force_ssl": True,
                    "managed_dns": True,
                    "deploy_url": f"https://main--{name}.netlify.app",
                    "published_deploy": deploy_object(site_id, name, published_at=now),
                    "account_id": new_id(),
                    "account_name": "Local team",
                    "account_slug": "local-team",
                }
            return _copy(self._sites[site_id])

    def site(self, site_id: str) -> dict[str, Any]:
        with self._lock:
            return _copy(self._sites[site_id])

    def publish(
        self,
        site_id: str,
        *,
        published_at: datetime | None = None,
        deploy: Mapping[str, Any] | None = None,
        title: str = "Local deploy",
    ) -> dict[str, Any]:
        """Make a deploy the site's published one (a new ready deploy unless ``deploy`` is
        given, e.g. an older one rolled back to); returns it. Nobody is notified."""
        with self._lock:
            site = self._sites[site_id]
            if deploy is None:
                chosen = deploy_object(
                    site_id, site["name"], published_at=published_at, title=title
                )
            else:
                chosen = _copy(dict(deploy))
                when = published_at or datetime.now(UTC)
                chosen["published_at"] = chosen["updated_at"] = netlify_time(when)
            site["published_deploy"] = chosen
            site["updated_at"] = netlify_time(datetime.now(UTC))
            return _copy(chosen)

    def add_hook(self, site_id: str, body: Mapping[str, Any], *, disabled: bool = False) -> dict:
        """A hook registered on the site (as ``POST /hooks?site_id=`` would); returns it."""
        with self._lock:
            return _copy(self._create_hook(site_id, dict(body), disabled=disabled))

    def hooks(self, site_id: str | None = None) -> list[dict[str, Any]]:
        """The hooks (of one site), oldest first."""
        with self._lock:
            return [
                _copy(hook)
                for hook in self._hooks.values()
                if site_id is None or hook["site_id"] == site_id
            ]

    def disable_hook(self, hook_id: str) -> dict[str, Any]:
        """What Netlify does to a hook it gave up on: ``disabled: true``."""
        with self._lock:
            hook = self._hooks[hook_id]
            hook["disabled"] = True
            hook["updated_at"] = netlify_time(datetime.now(UTC))
            return _copy(hook)

    def route_host(self, netloc: str, host: str) -> None:
        """Deliveries to ``http://<netloc>/...`` carry ``Host: <host>`` (see the module doc)."""
        with self._lock:
            self._hosts[netloc] = host

    def notify(
        self, site_id: str, event: str, deploy: Mapping[str, Any] | None = None
    ) -> list[Delivery]:
        """Send ``event``'s notification about ``deploy`` (default: the site's published one)
        to each enabled hook of the site for that event, one after the other, as Netlify does
        after a build; disabled hooks get nothing. Returns what each delivery got."""
        with self._lock:
            document = _copy(dict(deploy)) if deploy else _copy(self._sites[site_id])
            if deploy is None:
                document = document["published_deploy"]
            targets = [
                _copy(hook)
                for hook in self._hooks.values()
                if hook["site_id"] == site_id
                and hook["event"] == event
                and hook["type"] == "url"
                and not hook["disabled"]
            ]
            hosts = dict(self._hosts)
        deliveries = []
        for hook in targets:
            data = hook.get("data") or {}
            url = str(data.get("url") or "")
            deliveries.append(
                self.deliver(
                    url,
                    event,
                    document,
                    secret=data.get("signature_secret"),
                    host=hosts.get(urlsplit(url).netloc),
                    hook_id=hook["id"],
                )
            )
        return deliveries

    def deliver(
        self,
        url: str,
        event: str,
        deploy: Mapping[str, Any],
        secret: str | None = None,
        host: str | None = None,
        hook_id: str = "",
    ) -> Delivery:
        """POST one deploy notification to ``url`` as Netlify does (signed when ``secret``)."""
        body = json.dumps(dict(deploy)).encode()
        parts = urlsplit(url)
        endpoint = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Netlify",
            "X-Netlify-Event": event,
        }
        if host:
            headers["Host"] = host
        if secret:
            headers["X-Webhook-Signature"] = netlify_signature(body, secret)
        if parts.scheme != "http" or not parts.hostname:
            # The fake reaches only the local stand-ins (plain HTTP on this machine).
            return Delivery(hook_id, event, endpoint, None, error="not a local http URL")
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", target or "/", body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except OSError as error:
            return Delivery(hook_id, event, endpoint, None, error=type(error).__name__)
        finally:
            connection.close()
        try:
            answer: Any = json.loads(raw) if raw else None
        except ValueError:
            answer = raw[:200].decode("utf-8", "replace")
        return Delivery(hook_id, event, endpoint, response.status, answer)

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` API calls answer ``status`` (e.g. 429, 500, 503) and do nothing."""
        with self._lock:
            self._failures.extend([status] * times)

    # -- the API ---------------------------------------------------------------------------

    def _create_hook(self, site_id: str, body: dict[str, Any], *, disabled: bool) -> dict:
        now = netlify_time(datetime.now(UTC))
        hook = {
            "id": new_id(),
            "site_id": site_id,
            "type": body.get("type", "url"),
            "event": body.get("event"),
            "data": dict(body.get("data") or {}),
            "created_at": now,
            "updated_at": now,
            "disabled": bool(body.get("disabled", disabled)),
        }
        self._hooks[hook["id"]] = hook
        return hook

    def answer(
        self, method: str, target: str, authorization: str | None, body: bytes
    ) -> tuple[int, Any]:
        """(status, JSON value or None) for one API call; records it."""
        status, value = self._answer(method, target, authorization, body)
        with self._lock:
            self.requests.append(RecordedRequest(method, target, status))
        return status, value

    def _answer(
        self, method: str, target: str, authorization: str | None, body: bytes
    ) -> tuple[int, Any]:
        split = urlsplit(target)
        path = split.path
        if not path.startswith(API_PREFIX + "/"):
            return _error(404)
        if authorization != f"Bearer {self.token}":
            return _error(401, "Access denied: a valid personal access token is required")
        with self._lock:
            if self._failures:
                return _error(self._failures.pop(0))
            query = parse_qs(split.query)
            parts = path[len(API_PREFIX) + 1 :].rstrip("/").split("/")
            return self._route(method, parts, query, body)

    def _route(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        if len(parts) == 2 and parts[0] == "sites" and method == "GET":
            site = self._sites.get(parts[1])
            return (200, _copy(site)) if site else _error(404)
        if parts == ["hooks"]:
            site_id = (query.get("site_id") or [""])[0]
            if not site_id:
                return _error(422, "site_id is required")
            if site_id not in self._sites:
                return _error(404)
            if method == "GET":
                return 200, [_copy(h) for h in self._hooks.values() if h["site_id"] == site_id]
            if method == "POST":
                document = _json_object(body)
                if document is None or not document.get("event"):
                    return _error(422, "a hook needs a JSON body with type, event and data")
                return 201, _copy(self._create_hook(site_id, document, disabled=False))
            return _error(405)
        if len(parts) in (2, 3) and parts[0] == "hooks":
            hook = self._hooks.get(parts[1])
            if hook is None:
                return _error(404)
            if len(parts) == 3:
                if parts[2] != "enable":
                    return _error(404)
                if method != "POST":
                    return _error(405)
                hook["disabled"] = False
                hook["updated_at"] = netlify_time(datetime.now(UTC))
                return 200, _copy(hook)
            if method == "GET":
                return 200, _copy(hook)
            if method == "DELETE":
                del self._hooks[hook["id"]]
                return 204, None
            if method == "PUT":
                document = _json_object(body)
                if document is None:
                    return _error(422, "a hook needs a JSON body")
                for key in ("type", "event", "data", "disabled"):
                    if key in document:
                        hook[key] = _copy(document[key])
                hook["updated_at"] = netlify_time(datetime.now(UTC))
                return 200, _copy(hook)
            return _error(405)
        return _error(404)


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body or b"null")
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _error(status: int, message: str | None = None) -> tuple[int, dict[str, Any]]:
    """The spec's ``error`` object."""
    try:
        default = HTTPStatus(status).phrase
    except ValueError:
        default = "Error"
    return status, {"code": status, "message": message or default}


def _make_handler(fake: NetlifyFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "netlify-fake"

        def _answer(self) -> None:
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                status, value = _error(413 if length.isdigit() else 400)
                self.close_connection = True
            else:
                body = self.rfile.read(int(length)) if int(length) else b""
                try:
                    status, value = fake.answer(
                        self.command, self.path, self.headers.get("Authorization"), body
                    )
                except Exception:
                    _log.exception("the Netlify fake failed")
                    status, value = _error(500)
            payload = b"" if value is None else json.dumps(value).encode()
            self.send_response(status)
            if value is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s %s", self.address_string(), format % args)

    return Handler
