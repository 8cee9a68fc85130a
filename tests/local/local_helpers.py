"""Shared values, fakes and requests of the local stack's tests (imported by conftest and tests)."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import threading

import jwt

TEST_TOKEN = "Local-Test_Token-0123456789abcdef"
TEST_JWS_SECRET = "local-test-jws-secret-of-32-bytes-or-more"


class RecordingFunction:
    """Stands in for ``handler.handler``: records events and answers 202 with the event."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.contexts: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict, context: object) -> dict:
        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
        logging.getLogger("webhook").info("recorded", extra={"path": event.get("path")})
        return {
            "statusCode": 202,
            "statusDescription": "202 Accepted",
            "headers": {"Content-Type": "application/json", "X-Recorded": "yes"},
            "body": json.dumps({"status": "recorded"}),
            "isBase64Encoded": False,
        }


def request(local, method="POST", *, path=None, query=None, host=None, body=b"", headers=None):
    """Send one request to the local listener; returns (status, reason, headers, body)."""
    path = local.rule.path if path is None else path
    query = f"token={TEST_TOKEN}" if query is None else query
    all_headers = {"Host": local.webhook_host if host is None else host, **(headers or {})}
    connection = http.client.HTTPConnection("127.0.0.1", local.listener.port, timeout=30)
    try:
        target = f"{path}?{query}" if query else path
        connection.request(method, target, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.reason, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def url_request(local, method="POST", target=None, *, body=b"", headers=()):
    """One request to a function URL stand-in (every path reaches the function); returns
    (status, header pairs, body). Header pairs may repeat a name."""
    target = target or f"{local.settings.webhook_path}?token={TEST_TOKEN}"
    connection = http.client.HTTPConnection("127.0.0.1", local.listener.port, timeout=30)
    try:
        connection.putrequest(method, target)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def deploy_body(site_id: str, deploy_id: str) -> bytes:
    deploy = {"id": deploy_id, "site_id": site_id, "state": "ready", "context": "production"}
    return json.dumps(deploy).encode()


def signed_headers(body: bytes) -> dict[str, str]:
    claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
    return {
        "Content-Type": "application/json",
        "X-Netlify-Event": "deploy_created",
        "X-Webhook-Signature": jwt.encode(claims, TEST_JWS_SECRET, algorithm="HS256"),
    }


class RecordingWorker:
    """Stands in for ``worker.handler``: records each event and answers what ``answer`` says.

    ``answer(event)`` returns the handler's response (default: every record processed); it may
    also raise, or call SQS itself, as the real worker does.
    """

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.contexts: list[object] = []
        self.environments: list[dict[str, str]] = []
        self.answer = self.all_processed
        self._lock = threading.Lock()

    @staticmethod
    def all_processed(event: dict) -> object:
        return {"batchItemFailures": []}

    def __call__(self, event: dict, context: object) -> object:
        import os

        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
            self.environments.append(dict(os.environ))
        logging.getLogger("worker").info("batch", extra={"records": len(event["Records"])})
        return self.answer(event)
