"""The Netlify API fake over HTTP: the documented shapes, auth, errors, and its notifications."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from infra.netlify_hook import hook_bodies
from local.netlify_fake import NetlifyFake

SITE = "3f8a2c1e-5b7d-4e9f-a1c3-2d4e6f8a0b1c"
JWS = "a-jws-secret-of-at-least-32-bytes-long"
HOOK_KEYS = {"id", "site_id", "type", "event", "data", "created_at", "updated_at", "disabled"}


@pytest.fixture
def fake() -> Iterator[NetlifyFake]:
    with NetlifyFake().start() as running:
        running.add_site(SITE, "example")
        yield running


def call(fake: NetlifyFake, method: str, path: str, body=None, token: str | None = ""):
    """One API call with ``token`` (empty: the fake's, None: none); returns (status, JSON)."""
    url = urllib.parse.urlsplit(fake.api_url + path)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or fake.token}"
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        target = url.path + (f"?{url.query}" if url.query else "")
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, target, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        connection.close()


def test_the_site_carries_its_published_deploy(fake):
    status, site = call(fake, "GET", f"/sites/{SITE}")
    assert status == 200
    assert site["id"] == SITE
    deploy = site["published_deploy"]
    assert deploy["site_id"] == SITE and deploy["state"] == "ready"
    assert deploy["context"] == "production"
    published = datetime.fromisoformat(deploy["published_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - published).total_seconds()) < 60
    assert len(deploy["id"]) == 24


def test_publish_replaces_the_published_deploy(fake):
    when = datetime.now(UTC) - timedelta(minutes=20)
    deploy = fake.publish(SITE, published_at=when)
    _, site = call(fake, "GET", f"/sites/{SITE}")
    assert site["published_deploy"]["id"] == deploy["id"]
    published = datetime.fromisoformat(site["published_deploy"]["published_at"][:-1] + "+00:00")
    assert abs((published - when).total_seconds()) < 0.01
    # A rollback: an older deploy published again, at a new time.
    again = fake.publish(SITE, deploy=deploy)
    assert again["id"] == deploy["id"] and again["published_at"] != deploy["published_at"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_call_needs_the_bearer_token(fake, token):
    status, error = call(fake, "GET", f"/sites/{SITE}", token=token)
    assert status == 401
    assert error["code"] == 401 and error["message"]
    status, _ = call(fake, "GET", f"/hooks?site_id={SITE}", token=token)
    assert status == 401


def test_hooks_are_created_listed_updated_enabled_and_deleted(fake):
    body = hook_bodies("https://lambda.example.com/webhooks/netlify?token=t", "jws")[0]
    status, created = call(fake, "POST", f"/hooks?site_id={SITE}", body)
    assert status == 201
    assert set(created) == HOOK_KEYS
    assert (created["site_id"], created["type"], created["event"]) == (SITE, "url", body["event"])
    assert created["data"] == body["data"] and created["disabled"] is False

    status, listed = call(fake, "GET", f"/hooks?site_id={SITE}")
    assert (status, [hook["id"] for hook in listed]) == (200, [created["id"]])

    fake.disable_hook(created["id"])
    _, fetched = call(fake, "GET", f"/hooks/{created['id']}")
    assert fetched["disabled"] is True
    status, enabled = call(fake, "POST", f"/hooks/{created['id']}/enable")
    assert (status, enabled["disabled"]) == (200, False)

    new_data = {"url": "https://lambda.example.com/webhooks/netlify?token=rotated"}
    status, updated = call(fake, "PUT", f"/hooks/{created['id']}", {**body, "data": new_data})
    assert (status, updated["data"]) == (200, new_data)
    assert fake.hooks(SITE)[0]["data"] == new_data

    status, nothing = call(fake, "DELETE", f"/hooks/{created['id']}")
    assert (status, nothing) == (204, None)
    assert call(fake, "GET", f"/hooks?site_id={SITE}") == (200, [])


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/sites/no-such-site", None, 404),
        ("GET", "/hooks/0123456789abcdef01234567", None, 404),
        ("POST", "/hooks/0123456789abcdef01234567/enable", None, 404),
        ("GET", "/hooks?site_id=no-such-site", None, 404),
        ("GET", "/hooks", None, 422),
        ("POST", f"/hooks?site_id={SITE}", {"type": "url"}, 422),
        ("GET", "/nothing-here", None, 404),
    ],
)
def test_errors_use_the_specs_error_object(fake, method, path, body, status):
    answer_status, error = call(fake, method, path, body)
    assert answer_status == status
    assert error["code"] == status and isinstance(error["message"], str)


def test_fail_next_answers_errors_then_recovers_and_requests_are_recorded(fake):
    fake.fail_next(429, times=2)
    assert call(fake, "GET", f"/sites/{SITE}")[0] == 429
    assert call(fake, "GET", f"/hooks?site_id={SITE}")[0] == 429
    assert call(fake, "GET", f"/sites/{SITE}")[0] == 200
    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("GET", f"/api/v1/sites/{SITE}", 429),
        ("GET", f"/api/v1/hooks?site_id={SITE}", 429),
        ("GET", f"/api/v1/sites/{SITE}", 200),
    ]
    assert all(fake.token not in repr(request) for request in fake.requests)


class _Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent and answers 202."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, dict(self.headers), body))
                payload = b'{"status": "queued"}'
                self.send_response(202)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    running = _Receiver()
    yield running
    running.close()


def test_notify_sends_the_signed_deploy_to_each_enabled_hook_of_the_event(fake, receiver):
    url = f"http://{receiver.netloc}/webhooks/netlify?token=secret-token"
    created, restored = (fake.add_hook(SITE, body) for body in hook_bodies(url, JWS))
    disabled = fake.add_hook(SITE, hook_bodies(url, JWS)[0], disabled=True)
    fake.route_host(receiver.netloc, "lambda.example.com")
    deploy = fake.publish(SITE)

    deliveries = fake.notify(SITE, "deploy_created")
    assert [(d.hook_id, d.status, d.body) for d in deliveries] == [
        (created["id"], 202, {"status": "queued"})
    ]
    assert deliveries[0].endpoint == f"http://{receiver.netloc}/webhooks/netlify"
    assert disabled["id"] not in {d.hook_id for d in deliveries}
    ((path, headers, body),) = receiver.received
    assert path == "/webhooks/netlify?token=secret-token"
    assert json.loads(body) == deploy
    assert headers["X-Netlify-Event"] == "deploy_created"
    assert headers["Host"] == "lambda.example.com"
    claims = jwt.decode(headers["X-Webhook-Signature"], JWS, algorithms=["HS256"])
    assert claims == {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}

    assert [d.hook_id for d in fake.notify(SITE, "deploy_restored")] == [restored["id"]]
