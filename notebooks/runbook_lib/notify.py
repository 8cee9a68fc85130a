"""Section 4, trigger: a deploy notification exactly as Netlify sends it.

The payload is a realistic Netlify Deploy object, signed like Netlify signs it (an HS256 JWS in
``X-Webhook-Signature``), and sent without proxies or redirects.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import jwt

from infra.netlify_hook import EVENT as NETLIFY_EVENT
from runbook_lib.answers import explain_answer
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_text, mask_url


def netlify_deploy_payload(
    site_id: str,
    deploy_id: str | None = None,
    context: str = "production",
    state: str = "ready",
) -> dict[str, Any]:
    """A realistic Netlify Deploy object (what a deploy notification's body is)."""
    deploy_id = deploy_id or secrets.token_hex(12)
    build_id = secrets.token_hex(12)
    commit = secrets.token_hex(20)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    started = now - timedelta(seconds=42)
    created = started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond // 1000:03d}Z"
    name = "runbook-example"
    branch = "main" if context == "production" else "feature"
    return {
        "id": deploy_id,
        "site_id": site_id,
        "build_id": build_id,
        "state": state,
        "name": name,
        "url": f"https://{name}.netlify.app",
        "ssl_url": f"https://{name}.netlify.app",
        "admin_url": f"https://app.netlify.com/sites/{name}",
        "deploy_url": f"http://{deploy_id}--{name}.netlify.app",
        "deploy_ssl_url": f"https://{deploy_id}--{name}.netlify.app",
        "created_at": created,
        "updated_at": stamp,
        "user_id": secrets.token_hex(12),
        "error_message": None if state != "error" else "Build script returned non-zero exit code",
        "required": [],
        "required_functions": [],
        "commit_ref": commit,
        "review_id": None,
        "branch": branch,
        "commit_url": f"https://github.com/example/{name}/commit/{commit}",
        "skipped": None,
        "locked": None,
        "log_access_attributes": {
            "type": "firebase",
            "url": f"https://netlify-builds1.firebaseio.com/builds/{build_id}/log",
            "endpoint": "https://netlify-builds1.firebaseio.com",
            "path": f"/builds/{build_id}/log",
            "token": "dummy-log-token-" + secrets.token_hex(8),
        },
        "title": "Runbook test notification",
        "review_url": None,
        "published_at": stamp if state == "ready" else None,
        "context": context,
        "deploy_time": 42,
        "available_functions": [],
        "screenshot_url": None,
        "committer": "runbook",
        "skipped_log": None,
        "manual_deploy": False,
        "file_tracking_optimization": True,
        "plugin_state": "success",
        "has_edge_handlers": False,
        "links": {
            "permalink": f"https://{deploy_id}--{name}.netlify.app",
            "alias": f"https://{name}.netlify.app",
        },
        "framework": "unknown",
        "function_schedules": [],
        "summary": {"status": state, "messages": []},
    }


def netlify_signature(body: bytes, jws_secret: str) -> str:
    """The ``X-Webhook-Signature`` Netlify sends: HS256 JWT, ``iss`` and the body's SHA-256."""
    claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
    with warnings.catch_warnings():
        # Netlify signs with whatever secret the hook holds; its strength is the stack
        # config's business (netlifyJwsSecret), not a reason to clutter the runbook's output.
        warnings.simplefilter("ignore", getattr(jwt.warnings, "InsecureKeyLengthWarning", Warning))
        return jwt.encode(claims, jws_secret, algorithm="HS256")


@dataclass
class NotificationResult:
    status: int
    body: Any
    headers: dict[str, str]
    reason: str = ""
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def invalidations(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict):
            return list(self.body.get("invalidations") or [])
        return []


def send_deploy_notification(
    webhook_url: str,
    payload: Mapping[str, Any],
    jws_secret: str | None = None,
    host: str | None = None,
    event: str = NETLIFY_EVENT,
    timeout: float = 10,
) -> NotificationResult:
    """POST ``payload`` as Netlify does; any HTTP answer is a result, never an exception.

    No proxies and no redirects are followed (Netlify does not follow them either). ``host``
    overrides the Host header: the local stack listens on 127.0.0.1 but routes by domain.
    """
    body = json.dumps(payload).encode()
    parts = urllib.parse.urlsplit(webhook_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {mask_url(webhook_url)}")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Netlify",
        "X-Netlify-Event": event,
    }
    if host:
        headers["Host"] = host
    if jws_secret:
        headers["X-Webhook-Signature"] = netlify_signature(body, jws_secret)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        status, reason = response.status, response.reason
    finally:
        connection.close()
    try:
        parsed = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = None
    return NotificationResult(
        status=status,
        body=parsed,
        headers=answer_headers,
        reason=reason,
        elapsed_s=round(time.monotonic() - started, 3),
    )


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


@dataclass
class TriggerResult:
    deploy_id: str | None
    sent: bool
    result: NotificationResult | None = None
    message: str = ""
    signed: bool = False
    error: str | None = None
    caller_status: int | None = None  # the HTTP answer to a notification the caller sent

    @property
    def accepted(self) -> bool:
        return bool(self.result and self.result.accepted)

    @property
    def status(self) -> int | None:
        return self.result.status if self.result else self.caller_status

    def markdown(self) -> str:
        lines = [self.message]
        body = self.result.body if self.result else None
        if self.result is not None:
            lines.append(
                f"\nAnswer: **{self.result.status} {self.result.reason}** "
                f"in {self.result.elapsed_s:.2f} s ({'signed' if self.signed else 'unsigned'})."
            )
            if body is not None:
                shown = json.dumps(body, indent=2, ensure_ascii=False)
                lines.append(f"\n```json\n{mask_text(shown)}\n```")
        elif self.caller_status is not None:
            shown_status = _status_line(self.caller_status)
            lines.append(f"\nAnswer, as the caller reports it: **{shown_status}**.")
        meaning = explain_answer(self.status, body) if self.status is not None else ""
        if meaning:
            lines.append(f"\n{meaning}")
        if self.error:
            lines.append(f"\n❌ {self.error}")
        return "\n".join(lines)


def trigger(
    config: RunbookConfig,
    deploy_id: str | None = None,
    *,
    notification_status: int | None = None,
    send: Callable[..., NotificationResult] = send_deploy_notification,
) -> TriggerResult:
    """Send a signed test notification, or report the one the caller already sent (with the
    HTTP status it got, ``notification_status``, when the caller passes it)."""
    if deploy_id:
        return TriggerResult(
            deploy_id=deploy_id,
            sent=False,
            caller_status=int(notification_status) if notification_status is not None else None,
            message=f"Deploy `{deploy_id}` was notified by the caller (e.g. `make demo`): "
            "not sending another; the next section looks for its invalidation.",
        )
    if not config.live or not config.webhook_url:
        return TriggerResult(
            deploy_id=None,
            sent=False,
            message="**Skipped:** " + " ".join(config.missing() or ["no webhook URL"]),
        )
    site_id = config.netlify_site_id or "00000000-0000-4000-8000-000000000000"
    payload = netlify_deploy_payload(site_id)
    outcome = TriggerResult(
        deploy_id=payload["id"],
        sent=True,
        signed=bool(config.jws_secret),
        message=f"Sent a `{NETLIFY_EVENT}` notification for deploy `{payload['id']}` "
        f"(site `{site_id}`, context `production`) to {mask_url(config.webhook_url)}"
        + (f" with Host `{config.webhook_host}`" if config.webhook_host else "")
        + ".",
    )
    try:
        outcome.result = send(
            config.webhook_url, payload, jws_secret=config.jws_secret, host=config.webhook_host
        )
    except (OSError, http.client.HTTPException, ValueError) as error:
        outcome.error = (
            f"no answer from the webhook: {mask_text(str(error))}. Is the ALB (or `make local`) "
            "up, and does the URL's host resolve?"
        )
    return outcome
