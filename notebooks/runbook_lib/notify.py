"""Section 5, trigger: a deploy notification exactly as Netlify sends it, when asked.

Read-only by default: only ``send_test_notification=True`` sends one (it purges the stack's
invalidation paths, ``/*`` by default, on every distribution, or on ``distribution_id`` alone).
Otherwise the section says what the verification will look for: the ``deploy_id`` given (e.g.
Netlify's last production deploy, or the demo's notification), else the newest invalidation the
webhook made. The payload is a realistic Netlify Deploy object (with ``published_at`` and
``updated_at``, which the caller reference covers), signed like Netlify signs it (an HS256 JWS
in ``X-Webhook-Signature``), and sent without proxies or redirects.
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

from function.webhook_settings import DISTRIBUTION_QUERY_PARAMETER
from infra.netlify_hook import EVENT as NETLIFY_EVENT
from infra.netlify_hook import EVENTS as NETLIFY_EVENTS
from runbook_lib.answers import explain_answer
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_text, mask_url
from runbook_lib.verdict import FAIL, PASS, SKIPPED, WARN, Outcome


def _netlify_time(moment: datetime) -> str:
    """Netlify's timestamps: ISO 8601 in UTC with milliseconds (``2024-01-01T12:00:00.000Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def netlify_deploy_payload(
    site_id: str,
    deploy_id: str | None = None,
    context: str = "production",
    state: str = "ready",
    *,
    restored: bool = False,
) -> dict[str, Any]:
    """A realistic Netlify Deploy object (what a deploy notification's body is).

    ``published_at`` and ``updated_at`` are set as Netlify sets them (the caller reference
    covers both); ``restored`` shapes a rollback: an older deploy published again now.
    """
    deploy_id = deploy_id or secrets.token_hex(12)
    build_id = secrets.token_hex(12)
    commit = secrets.token_hex(20)
    now = datetime.now(UTC)
    stamp = _netlify_time(now)
    # A new deploy was created 42 s before it was published; a restored one (a rollback)
    # was created long ago and is published again now.
    created = _netlify_time(now - timedelta(seconds=42 if not restored else 86400 * 3))
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
    """What section 5 did: sent a notification, or what the verification will look for."""

    deploy_id: str | None
    sent: bool
    mode: str  # "test notification", "deploy", "newest" (the newest webhook invalidation)
    result: NotificationResult | None = None
    message: str = ""
    signed: bool = False
    event: str | None = None
    error: str | None = None
    caller_status: int | None = None  # the HTTP answer to a notification the caller sent
    skipped: str | None = None

    @property
    def accepted(self) -> bool:
        if self.result is not None:
            return self.result.accepted
        return self.caller_status == 202

    @property
    def status(self) -> int | None:
        return self.result.status if self.result else self.caller_status

    @property
    def references(self) -> dict[str, str]:
        """distribution id -> the exact caller reference the ingest queued (from its 202)."""
        if self.result is None:
            return {}
        return {
            str(item["distribution_id"]): str(item["caller_reference"])
            for item in self.result.invalidations
            if isinstance(item, dict)
            and item.get("distribution_id")
            and item.get("caller_reference")
        }

    @property
    def refused(self) -> str | None:
        """Why no invalidation can come of this trigger (the wait is skipped), or None."""
        if self.error:
            return f"no notification was delivered: {self.error}"
        status = self.status
        if status is None or status == 202:
            return None
        if status == 200:
            return "the webhook answered 200 ignored: it queued nothing for this deploy"
        line = _status_line(status)
        return f"the webhook refused the notification (HTTP {line}): nothing was queued"

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("trigger", SKIPPED, [self.skipped])
        if self.mode == "newest":
            return Outcome(
                "trigger",
                SKIPPED,
                [
                    "no test notification (`send_test_notification = False`) and no `deploy_id`: "
                    "verifying the newest invalidation the webhook made"
                ],
            )
        refused = self.refused
        if refused and self.status == 200:
            return Outcome("trigger", WARN, [refused])
        if refused:
            return Outcome("trigger", FAIL, [refused])
        if self.sent:
            return Outcome(
                "trigger", PASS, [f"test notification for deploy {self.deploy_id} accepted (202)"]
            )
        if self.caller_status is None:
            return Outcome(
                "trigger", SKIPPED, [f"verifying deploy {self.deploy_id} (answer unknown)"]
            )
        return Outcome(
            "trigger", PASS, [f"deploy {self.deploy_id} was accepted (202, as reported)"]
        )

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
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
            lines.append(f"\n**FAIL:** {self.error}")
        return "\n".join(lines)


def with_distribution(url: str, distribution_id: str | None) -> str:
    """``url`` narrowed to one distribution with the webhook's ``dist`` query parameter."""
    if not distribution_id:
        return url
    base, hash_sign, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    query = urllib.parse.urlencode({DISTRIBUTION_QUERY_PARAMETER: distribution_id})
    return f"{base}{separator}{query}{hash_sign}{fragment}"


def trigger(
    config: RunbookConfig,
    deploy_id: str | None = None,
    *,
    send_test_notification: bool = False,
    event: str = NETLIFY_EVENT,
    notification_status: int | None = None,
    send: Callable[..., NotificationResult] = send_deploy_notification,
) -> TriggerResult:
    """Send a signed test notification when asked (for ``deploy_id`` when given, else a fresh
    one); otherwise report the deploy the caller notified (with the HTTP status it got,
    ``notification_status``, 0 or None when unknown), or that the newest webhook invalidation
    will be verified."""
    deploy_id = deploy_id or None
    status = int(notification_status) if notification_status else None
    if not send_test_notification:
        if deploy_id:
            answered = f" It was answered {_status_line(status)}." if status else ""
            return TriggerResult(
                deploy_id=deploy_id,
                sent=False,
                mode="deploy",
                caller_status=status,
                message=f"No test notification (`send_test_notification = False`). Verifying "
                f"deploy `{deploy_id}`, notified by Netlify or the caller.{answered}",
            )
        return TriggerResult(
            deploy_id=None,
            sent=False,
            mode="newest",
            message="No test notification (`send_test_notification = False`) and no "
            "`deploy_id`: the next section verifies the newest invalidation the webhook made on "
            "each distribution. Set `deploy_id` to check a given deploy (e.g. Netlify's last "
            "production deploy), or `send_test_notification = True` to send one (it invalidates "
            f"{', '.join(config.invalidation_paths)} on every distribution).",
        )
    if event not in NETLIFY_EVENTS:
        return TriggerResult(
            deploy_id=deploy_id,
            sent=False,
            mode="test notification",
            event=event,
            error=f"`test_event` must be one of {', '.join(NETLIFY_EVENTS)}, not {event!r}",
        )
    if not config.live or not config.webhook_url:
        return TriggerResult(
            deploy_id=None,
            sent=False,
            mode="test notification",
            skipped=" ".join(config.missing() or ["No webhook URL."]),
        )
    site_id = config.netlify_site_id or "00000000-0000-4000-8000-000000000000"
    payload = netlify_deploy_payload(site_id, deploy_id, restored=event != NETLIFY_EVENT)
    url = with_distribution(config.webhook_url, config.distribution_id)
    outcome = TriggerResult(
        deploy_id=payload["id"],
        sent=True,
        mode="test notification",
        signed=bool(config.jws_secret),
        event=event,
        message=f"Sent a `{event}` notification for deploy `{payload['id']}` "
        f"(site `{site_id}`, context `production`, published at {payload['published_at']}) to "
        f"{mask_url(url)}"
        + (f" with Host `{config.webhook_host}`" if config.webhook_host else "")
        + ".",
    )
    try:
        outcome.result = send(
            url, payload, jws_secret=config.jws_secret, host=config.webhook_host, event=event
        )
    except (OSError, http.client.HTTPException, ValueError) as error:
        outcome.error = (
            f"no answer from the webhook: {mask_text(str(error))}. Is the endpoint (or `make "
            "local`) up, and does the URL's host resolve?"
        )
    return outcome
