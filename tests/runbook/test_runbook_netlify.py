"""Section 10 against a local fake of Netlify's documented hooks endpoints."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from infra.netlify_hook import EVENTS, hook_bodies
from runbook_lib.config import StackOutputs, load_config
from runbook_lib.hooks import connect, connect_netlify, unreachable_for_netlify

API_TOKEN = "nfp_fake_personal_access_token_123456"
SITE = "3f8a2c1e-5b7d-4e9f-a1c3-2d4e6f8a0b1c"
URL = "https://lambda.example.com/webhooks/netlify?token=Tok3n-abcdefghijklmnopqrstuvwxyz"
JWS = "jws-secret-abcdefghijklmnopqrstuvwxyz012345"


class FakeNetlify(BaseHTTPRequestHandler):
    """GET/POST /api/v1/hooks?site_id=, PUT /api/v1/hooks/{id}, POST /api/v1/hooks/{id}/enable;
    bearer token required. Hooks carry ``disabled`` like Netlify's."""

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
        segments = parts.path.removeprefix("/api/v1/").split("/")
        if segments == ["hooks"] and method == "GET":
            site = query["site_id"][0]
            return self._reply(200, [h for h in hooks.values() if h["site_id"] == site])
        if segments == ["hooks"] and method == "POST":
            hook_id = f"hook{len(hooks) + 1:04d}"
            hooks[hook_id] = {"id": hook_id, "site_id": query["site_id"][0], "disabled": False}
            hooks[hook_id].update(body)
            return self._reply(201, hooks[hook_id])
        if len(segments) >= 2 and segments[0] == "hooks" and segments[1] not in hooks:
            return self._reply(404, {"code": 404, "message": "Not Found"})
        if len(segments) == 2 and method == "PUT":
            hooks[segments[1]].update(body)
            return self._reply(200, hooks[segments[1]])
        if len(segments) == 3 and segments[2] == "enable" and method == "POST":
            hooks[segments[1]]["disabled"] = False
            return self._reply(200, hooks[segments[1]])
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


def _connect(api_url, bodies=None, **kwargs):
    options = {"api_token": API_TOKEN, "api_url": api_url, "register": True}
    options.update(kwargs)
    return connect_netlify(bodies or hook_bodies(URL, JWS), SITE, **options)


def _methods() -> list[str]:
    return [method for method, _ in FakeNetlify.calls]


def test_registering_creates_one_hook_per_event(netlify):
    result = _connect(netlify)
    assert [hook.action for hook in result.hooks] == ["created", "created"]
    stored = sorted(FakeNetlify.hooks.values(), key=lambda hook: hook["event"])
    assert [hook["event"] for hook in stored] == sorted(EVENTS)
    for hook in stored:
        assert hook["site_id"] == SITE and hook["type"] == "url"
        assert hook["data"] == {"url": URL, "signature_secret": JWS}
    assert _methods() == ["GET", "POST", "POST"]
    assert FakeNetlify.calls[0][1] == f"/api/v1/hooks?site_id={SITE}"
    assert result.outcome().verdict == "PASS"


def test_registering_twice_updates_both_instead_of_duplicating(netlify):
    _connect(netlify)
    again = _connect(netlify)
    assert [hook.action for hook in again.hooks] == ["updated", "updated"]
    assert len(FakeNetlify.hooks) == 2
    assert _methods() == ["GET", "POST", "POST", "GET", "PUT", "PUT"]


def test_a_missing_second_hook_is_added_next_to_the_existing_one(netlify):
    _connect(netlify, bodies=hook_bodies(URL, JWS)[:1])  # an older stack: deploy_created only
    result = _connect(netlify)
    assert [hook.action for hook in result.hooks] == ["updated", "created"]
    assert sorted(hook["event"] for hook in FakeNetlify.hooks.values()) == sorted(EVENTS)


def test_a_rotated_token_updates_the_same_hooks(netlify):
    _connect(netlify)
    rotated = URL.split("?")[0] + "?token=N3w-token-abcdefghijklmnopqrstu"
    result = _connect(netlify, hook_bodies(rotated, JWS))
    assert [hook.action for hook in result.hooks] == ["updated", "updated"]
    assert len(FakeNetlify.hooks) == 2
    assert {hook["data"]["url"] for hook in FakeNetlify.hooks.values()} == {rotated}


def test_by_default_the_hooks_are_only_listed(netlify):
    FakeNetlify.hooks["h1"] = {
        "id": "h1",
        "site_id": SITE,
        "type": "url",
        "event": "deploy_created",
        "data": {"url": URL},
        "disabled": True,
    }
    result = _connect(netlify, register=False)
    assert _methods() == ["GET"]  # read-only: nothing created, updated or enabled
    created, restored = result.hooks
    assert (created.state, created.hook_id, created.action) == ("disabled", "h1", "none")
    assert restored.state == "missing"
    outcome = result.outcome()
    assert outcome.verdict == "WARN"
    assert any("enable_disabled_hooks = True" in reason for reason in outcome.reasons)
    assert any("register_netlify_hooks = True" in reason for reason in outcome.reasons)
    assert FakeNetlify.hooks["h1"]["disabled"] is True


def test_a_disabled_hook_is_re_enabled_only_when_asked(netlify):
    _connect(netlify)
    FakeNetlify.hooks["hook0002"]["disabled"] = True
    FakeNetlify.calls.clear()
    result = _connect(netlify, register=False, enable_disabled=True)
    assert _methods() == ["GET", "POST"]
    assert FakeNetlify.calls[1][1] == "/api/v1/hooks/hook0002/enable"
    assert FakeNetlify.hooks["hook0002"]["disabled"] is False
    assert [hook.action for hook in result.hooks] == ["none", "enabled"]
    assert result.outcome().verdict == "PASS"


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
    assert [hook.action for hook in result.hooks] == ["created", "created"]
    assert len(FakeNetlify.hooks) == 4
    assert FakeNetlify.hooks["fail1"]["event"] == "deploy_failed"


def test_the_bodies_are_shown_masked(netlify):
    result = _connect(netlify, register=False)
    shown = json.dumps(result.bodies) + result.markdown()
    assert JWS not in shown and "abcdefghijklmnopqrstuvwxyz" not in shown
    assert result.bodies[0]["data"]["signature_secret"] == "jws-…"


def test_without_an_api_token_nothing_is_called(netlify):
    result = _connect(netlify, api_token=None, register=False)
    assert result.skipped and "NETLIFY_AUTH_TOKEN" in result.skipped
    assert FakeNetlify.calls == [] and result.outcome().verdict == "SKIPPED"
    asked = _connect(netlify, api_token=None)
    assert asked.outcome().verdict == "WARN"  # a write was asked for and could not happen


def test_api_errors_are_reported_not_raised(netlify):
    result = _connect(netlify, api_token="wrong")
    assert result.action == "failed" and "401" in (result.error or "")
    assert result.outcome().verdict == "FAIL" and FakeNetlify.hooks == {}
    assert "wrong" not in result.markdown()


def test_connect_reads_token_and_api_url_from_the_environment(netlify):
    config = load_config(
        "dev",
        environ={"NCW_WEBHOOK_URL": URL, "NCW_JWS_SECRET": JWS, "NCW_NETLIFY_SITE_ID": SITE},
        stack_outputs=StackOutputs(None, "n/a"),
    )
    env = {"NETLIFY_AUTH_TOKEN": API_TOKEN, "NETLIFY_API_URL": netlify}
    assert connect(config, environ=env).action == "checked" and _methods() == ["GET"]
    result = connect(config, register=True, environ=env)
    assert result.action == "created"
    for hook in FakeNetlify.hooks.values():
        assert hook["data"] == {"url": URL, "signature_secret": JWS}


def _local_config(api_url: str):
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "NCW_WEBHOOK_URL": "http://127.0.0.1:8080/webhooks/netlify?token=t0k3n-for-the-local-stack",
        "NCW_JWS_SECRET": JWS,
        "NCW_NETLIFY_SITE_ID": SITE,
    }
    return load_config("dev", environ=env, stack_outputs=StackOutputs(None, "n/a"))


def test_against_the_local_stack_the_real_api_is_never_called():
    """The local stack exports the real site's id: a hook there would point the real site at
    this machine."""
    config = _local_config("https://api.netlify.com/api/v1")
    api = {"NETLIFY_AUTH_TOKEN": API_TOKEN, "NETLIFY_API_URL": "https://api.netlify.com/api/v1"}
    result = connect(config, register=True, environ=api)
    assert result.skipped and "AWS_ENDPOINT_URL is set" in result.skipped
    assert result.action == "skipped" and result.outcome().verdict == "WARN"


def test_against_the_local_stack_a_local_fake_of_the_api_is_used(netlify):
    config = _local_config(netlify)
    api = {"NETLIFY_AUTH_TOKEN": API_TOKEN, "NETLIFY_API_URL": netlify}
    result = connect(config, register=True, environ=api)
    assert result.action == "created" and len(FakeNetlify.hooks) == 2


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
def test_a_webhook_url_netlify_cannot_reach_is_never_registered(netlify, monkeypatch, url, why):
    from runbook_lib import hooks

    monkeypatch.setattr(hooks, "is_local_api", lambda api_url: False)  # the fake plays Netlify
    config = load_config(
        "dev",
        environ={"NCW_WEBHOOK_URL": url, "NCW_NETLIFY_SITE_ID": SITE},
        stack_outputs=StackOutputs(None, "n/a"),
    )
    api = {"NETLIFY_AUTH_TOKEN": API_TOKEN, "NETLIFY_API_URL": netlify}
    result = connect(config, register=True, enable_disabled=True, environ=api)
    assert result.refused and why in result.refused
    assert _methods() == ["GET"] and FakeNetlify.hooks == {}  # listed, never written
    assert result.outcome().verdict == "WARN"


def test_a_public_https_host_name_is_registered(netlify):
    assert unreachable_for_netlify(URL) is None
    assert _connect(netlify).action == "created"
