"""Section 8 against a local fake of Netlify's documented hooks endpoints."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from runbook_lib.config import StackOutputs, load_config
from runbook_lib.hooks import connect, connect_netlify, unreachable_for_netlify

API_TOKEN = "nfp_fake_personal_access_token_123456"
SITE = "3f8a2c1e-5b7d-4e9f-a1c3-2d4e6f8a0b1c"
URL = "https://lambda.example.com/webhooks/netlify?token=Tok3n-abcdefghijklmnopqrstuvwxyz"
JWS = "jws-secret-abcdefghijklmnopqrstuvwxyz012345"


class FakeNetlify(BaseHTTPRequestHandler):
    """GET/POST /api/v1/hooks?site_id=, PUT /api/v1/hooks/{id}, bearer token required."""

    hooks: ClassVar[dict[str, dict]] = {}
    calls: ClassVar[list[tuple[str, str]]] = []

    def _reply(self, status: int, payload) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _route(self, method: str) -> None:
        type(self).calls.append((method, self.path))
        if self.headers.get("Authorization") != f"Bearer {API_TOKEN}":
            return self._reply(401, {"code": 401, "message": "Access Denied"})
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        hooks = type(self).hooks
        if parts.path == "/api/v1/hooks" and method == "GET":
            site = query["site_id"][0]
            return self._reply(200, [h for h in hooks.values() if h["site_id"] == site])
        if parts.path == "/api/v1/hooks" and method == "POST":
            hook_id = f"hook{len(hooks) + 1:04d}"
            hooks[hook_id] = {"id": hook_id, "site_id": query["site_id"][0], **body}
            return self._reply(201, hooks[hook_id])
        if parts.path.startswith("/api/v1/hooks/") and method == "PUT":
            hook_id = parts.path.rsplit("/", 1)[1]
            if hook_id not in hooks:
                return self._reply(404, {"code": 404, "message": "Not Found"})
            hooks[hook_id].update(body)
            return self._reply(200, hooks[hook_id])
        return self._reply(404, {"code": 404, "message": "Not Found"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def log_message(self, *args):
        pass


@pytest.fixture
def netlify():
    FakeNetlify.hooks, FakeNetlify.calls = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNetlify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    server.shutdown()
    server.server_close()


def _body(url: str = URL) -> dict:
    return {"type": "url", "event": "deploy_created", "data": {"url": url, "signature_secret": JWS}}


def _connect(api_url, body=None, **kwargs):
    options = {"api_token": API_TOKEN, "api_url": api_url, "dry_run": False}
    options.update(kwargs)
    return connect_netlify(body or _body(), SITE, **options)


def test_creates_the_hook_when_none_exists(netlify):
    result = _connect(netlify)
    assert result.action == "created" and result.hook_id == "hook0001"
    stored = FakeNetlify.hooks["hook0001"]
    assert stored["site_id"] == SITE and stored["event"] == "deploy_created"
    assert stored["data"] == {"url": URL, "signature_secret": JWS}
    assert [method for method, _ in FakeNetlify.calls] == ["GET", "POST"]
    assert FakeNetlify.calls[0][1] == f"/api/v1/hooks?site_id={SITE}"


def test_running_twice_updates_instead_of_duplicating(netlify):
    _connect(netlify)
    again = _connect(netlify)
    assert again.action == "updated" and again.hook_id == "hook0001"
    assert len(FakeNetlify.hooks) == 1
    assert [method for method, _ in FakeNetlify.calls] == ["GET", "POST", "GET", "PUT"]


def test_a_rotated_token_updates_the_same_hook(netlify):
    _connect(netlify)
    rotated = URL.split("?")[0] + "?token=N3w-token-abcdefghijklmnopqrstu"
    result = _connect(netlify, _body(rotated))
    assert result.action == "updated" and len(FakeNetlify.hooks) == 1
    assert FakeNetlify.hooks["hook0001"]["data"]["url"] == rotated


def test_other_hooks_of_the_site_are_left_alone(netlify):
    FakeNetlify.hooks["slack1"] = {
        "id": "slack1",
        "site_id": SITE,
        "type": "slack",
        "event": "deploy_created",
        "data": {"url": "https://hooks.slack.com/services/x"},
    }
    FakeNetlify.hooks["fail1"] = {
        "id": "fail1",
        "site_id": SITE,
        "type": "url",
        "event": "deploy_failed",
        "data": {"url": URL},
    }
    result = _connect(netlify)
    assert result.action == "created" and len(FakeNetlify.hooks) == 3
    assert FakeNetlify.hooks["fail1"]["event"] == "deploy_failed"


def test_dry_run_shows_the_masked_body_and_calls_nothing(netlify):
    result = _connect(netlify, dry_run=True)
    assert result.action == "dry-run" and FakeNetlify.calls == []
    shown = json.dumps(result.body)
    assert JWS not in shown and "abcdefghijklmnopqrstuvwxyz" not in shown
    assert result.body["data"]["signature_secret"] == "jws-…"


def test_without_an_api_token_nothing_is_called(netlify):
    result = _connect(netlify, api_token=None)
    assert result.action == "dry-run" and "NETLIFY_AUTH_TOKEN" in result.message
    assert FakeNetlify.calls == []


def test_api_errors_are_reported_not_raised(netlify):
    result = _connect(netlify, api_token="wrong")
    assert result.action == "failed" and "401" in result.message
    assert FakeNetlify.hooks == {}


def test_connect_reads_token_and_api_url_from_the_environment(netlify):
    config = load_config(
        "dev",
        environ={"NCW_WEBHOOK_URL": URL, "NCW_JWS_SECRET": JWS, "NCW_NETLIFY_SITE_ID": SITE},
        stack_outputs=StackOutputs(None, "n/a"),
    )
    env = {"NETLIFY_AUTH_TOKEN": API_TOKEN, "NETLIFY_API_URL": netlify}
    assert connect(config, dry_run=True, environ=env).action == "dry-run"
    result = connect(config, dry_run=False, environ=env)
    assert result.action == "created"
    assert FakeNetlify.hooks[result.hook_id]["data"] == {"url": URL, "signature_secret": JWS}


def test_against_the_local_stack_netlify_is_never_called(netlify):
    """The local stack exports the real site's id: a hook there would point the real site at
    this machine."""
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "NCW_WEBHOOK_URL": URL,
        "NCW_JWS_SECRET": JWS,
        "NCW_NETLIFY_SITE_ID": SITE,
    }
    config = load_config("dev", environ=env, stack_outputs=StackOutputs(None, "n/a"))
    api = {"NETLIFY_AUTH_TOKEN": API_TOKEN, "NETLIFY_API_URL": netlify}
    result = connect(config, dry_run=False, environ=api)
    assert result.action == "skipped" and "AWS_ENDPOINT_URL is set" in result.message
    assert FakeNetlify.calls == [] and FakeNetlify.hooks == {}
    shown = connect(config, dry_run=True, environ=api)
    assert shown.action == "dry-run" and "would not be sent to Netlify" in shown.message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://lambda.example.com/webhooks/netlify?token=t", "not https"),
        ("https://127.0.0.1:8080/webhooks/netlify?token=t", "not reachable"),
        ("https://localhost/webhooks/netlify?token=t", "this machine"),
        ("https://10.1.2.3/webhooks/netlify?token=t", "not reachable"),
        ("https://192.168.0.10/webhooks/netlify?token=t", "not reachable"),
        ("https://169.254.169.254/latest?token=t", "not reachable"),
        ("https://[::1]:8443/webhooks/netlify?token=t", "not reachable"),
        ("https://[fe80::1]/webhooks/netlify?token=t", "not reachable"),
    ],
)
def test_a_webhook_url_netlify_cannot_reach_is_never_registered(netlify, url, why):
    result = _connect(netlify, _body(url))
    assert result.action == "skipped" and why in result.message
    assert FakeNetlify.calls == [] and FakeNetlify.hooks == {}


def test_a_public_https_host_name_is_registered(netlify):
    assert unreachable_for_netlify(URL) is None
    assert _connect(netlify).action == "created"
