"""Section 10, connect Netlify: the site's two deploy notifications, through the hooks API.

One hook subscribes to one event, so the site needs one per event in ``infra.netlify_hook
.EVENTS`` (``deploy_created``: a new production deploy; ``deploy_restored``: a rollback or a
deploy published by hand), both with the same URL and JWS secret (stack output
``netlify_hooks``).

Read-only by default: with ``NETLIFY_AUTH_TOKEN`` set, the hooks are listed and each event's is
reported present, disabled or missing. ``register_netlify_hooks = True`` creates the missing
ones and updates the existing ones (matched by type, event and endpoint, so a rotated token
updates instead of adding: never a duplicate); ``enable_disabled_hooks = True`` re-enables a
hook Netlify switched off (``POST /hooks/{id}/enable``). Netlify's real API is never called for
the local stack, nor given a webhook URL it cannot reach (not https, a loopback or private
address); a local fake of the API (``NETLIFY_API_URL`` on a loopback address) always may be.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from function.webhook_settings import DEFAULT_NETLIFY_API_URL
from infra import netlify_hook
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_hook, mask_text, mask_url
from runbook_lib.verdict import FAIL, PASS, SKIPPED, WARN, Outcome, worst

NETLIFY_API_URL = DEFAULT_NETLIFY_API_URL
TOKEN_VARIABLE = "NETLIFY_AUTH_TOKEN"  # noqa: S105 (a variable's name, not a secret)
API_URL_VARIABLE = "NETLIFY_API_URL"
HOOK_COLUMNS = ["event", "hook", "state", "action", "verdict", "url"]


def netlify_hook_bodies(config: RunbookConfig) -> list[dict[str, Any]]:
    """One hooks-API body per event: the stack's ``netlify_hooks`` output, or built alike."""
    if config.netlify_hooks:
        bodies = [json.loads(json.dumps(body)) for body in config.netlify_hooks]
        known = {body.get("event") for body in bodies}
        # An older stack exported one body: the other events get the same URL and secret.
        template = bodies[0].get("data") or {}
        bodies += [
            netlify_hook.hook_body(
                template.get("url", ""), template.get(netlify_hook.JWS_SECRET_DATA_KEY), event
            )
            for event in netlify_hook.EVENTS
            if event not in known and template.get("url")
        ]
        return bodies
    if not config.webhook_url:
        return []
    return netlify_hook.hook_bodies(config.webhook_url, config.jws_secret)


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Same scheme, host and path: a rotated token updates the hook instead of adding one."""
    if not a or not b:
        return False
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, (pa.hostname or "").lower(), pa.port, pa.path.rstrip("/")) == (
        pb.scheme,
        (pb.hostname or "").lower(),
        pb.port,
        pb.path.rstrip("/"),
    )


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_api(api_url: str) -> bool:
    """A fake of Netlify's API on this machine (the local stack's, the tests')."""
    return _loopback((urllib.parse.urlsplit(api_url).hostname or "").lower())


def unreachable_for_netlify(url: str | None) -> str | None:
    """Why Netlify must not be given ``url`` (not https, a loopback/private/link-local host), or
    None. Host names are not resolved: only ``localhost`` and IP literals are judged."""
    parts = urllib.parse.urlsplit(url or "")
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        return f"the webhook URL is not https ({parts.scheme or 'no scheme'})"
    if not host:
        return "the webhook URL has no host"
    if host == "localhost" or host.endswith(".localhost"):
        return f"the webhook URL's host `{host}` is this machine"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback or address.is_private or address.is_link_local:
        return f"the webhook URL's host `{host}` is not reachable from the internet"
    return None


class NetlifyApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, text: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {mask_text(text)[:300]}")
        self.status = status


def _netlify_call(
    method: str,
    api_url: str,
    path: str,
    token: str,
    body: Mapping[str, Any] | None = None,
    timeout: float = 15,
) -> Any:
    url = api_url.rstrip("/") + path
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) API URL: {api_url}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "netlify-cloudfront-webhook-runbook",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        raise NetlifyApiError(error.code, method, path.split("?")[0], text) from None
    return json.loads(raw) if raw else None


@dataclass
class HookState:
    """One event's hook on Netlify, and what this run did about it."""

    event: str
    hook_id: str | None = None
    state: str = "unknown"  # enabled, disabled, missing, unknown
    action: str = "none"  # none, created, updated, enabled, failed
    url: str = ""  # masked
    duplicates: int = 0  # further hooks for the same event and endpoint
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return FAIL
        if self.state == "unknown":
            return SKIPPED
        if self.state in ("missing", "disabled") or self.duplicates:
            return WARN
        return PASS

    def row(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "hook": self.hook_id or "-",
            "state": self.state + (f" (+{self.duplicates} duplicate)" if self.duplicates else ""),
            "action": self.action if not self.error else f"failed: {self.error}",
            "verdict": self.verdict,
            "url": self.url,
        }

    def reason(self) -> str:
        if self.error:
            return f"{self.event}: {self.error}"
        if self.state == "missing":
            return (
                f"no {self.event} hook: Netlify will not notify the webhook of that event "
                "(`register_netlify_hooks = True` creates it)"
            )
        if self.state == "disabled":
            return (
                f"the {self.event} hook `{self.hook_id}` is disabled: Netlify sends nothing "
                "(`enable_disabled_hooks = True` re-enables it)"
            )
        if self.duplicates:
            return f"{self.duplicates + 1} hooks for {self.event}: delete the extra one(s)"
        return f"{self.event} hook `{self.hook_id}` {self.state}" + (
            f", {self.action}" if self.action != "none" else ""
        )


@dataclass
class NetlifyHooks:
    bodies: list[dict[str, Any]] = field(default_factory=list)  # masked
    hooks: list[HookState] = field(default_factory=list)
    register: bool = False
    enable_disabled: bool = False
    site_id: str | None = None
    message: str = ""
    skipped: str | None = None
    refused: str | None = None  # why a requested write was not done
    error: str | None = None

    @property
    def action(self) -> str:
        """One word for the summary: what happened on Netlify."""
        if self.error:
            return "failed"
        if self.skipped or self.refused:
            return "skipped"
        done = sorted({hook.action for hook in self.hooks if hook.action != "none"})
        return ", ".join(done) or "checked"

    def outcome(self) -> Outcome:
        if self.error:
            return Outcome("netlify hooks", FAIL, [self.error])
        if self.skipped:
            asked = self.register or self.enable_disabled
            return Outcome("netlify hooks", WARN if asked else SKIPPED, [self.skipped])
        verdict = worst(hook.verdict for hook in self.hooks)
        reasons = [hook.reason() for hook in self.hooks if hook.verdict == verdict]
        if self.refused:
            return Outcome("netlify hooks", worst([verdict, WARN]), [self.refused, *reasons])
        return Outcome("netlify hooks", verdict, reasons)

    def markdown(self) -> str:
        outcome = self.outcome()
        lines = [outcome.markdown()]
        if self.message:
            lines.append(f"\n{self.message}")
        for body in self.bodies:
            lines.append(f"\n```json\n{json.dumps(body, indent=2, ensure_ascii=False)}\n```")
        return "\n".join(lines)

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame([hook.row() for hook in self.hooks], columns=HOOK_COLUMNS)


def _matching(hooks: Sequence[Mapping[str, Any]], body: Mapping[str, Any]) -> list[dict[str, Any]]:
    url = (body.get("data") or {}).get("url")
    return [
        dict(hook)
        for hook in hooks
        if hook.get("type") == body.get("type", "url")
        and hook.get("event") == body.get("event")
        and same_endpoint((hook.get("data") or {}).get("url"), url)
    ]


def connect_netlify(
    hook_bodies: Sequence[Mapping[str, Any]],
    site_id: str | None,
    *,
    api_token: str | None,
    api_url: str = NETLIFY_API_URL,
    register: bool = False,
    enable_disabled: bool = False,
    timeout: float = 15,
    refuse: str | None = None,
    refuse_writes: str | None = None,
) -> NetlifyHooks:
    """List the site's hooks and report each event's; create/update them with ``register``,
    re-enable disabled ones with ``enable_disabled``. ``refuse`` (a reason) keeps the API from
    being called at all, ``refuse_writes`` from being written to."""
    result = NetlifyHooks(
        bodies=[mask_hook(body) or {} for body in hook_bodies],
        register=register,
        enable_disabled=enable_disabled,
        site_id=site_id,
        message="The hooks-API bodies (`POST /api/v1/hooks?site_id=...`), secrets masked. By "
        "hand: Site configuration, Notifications, Deploy notifications, HTTP POST request, "
        "one for 'Deploy succeeded' and one for 'Deploy restored', each with the URL and the "
        "JWS secret token:",
    )
    if not hook_bodies:
        result.skipped = "no webhook URL known (see section 1)"
        return result
    why = [
        text
        for text, missing in (
            (f"no {TOKEN_VARIABLE} in the environment", not api_token),
            ("no Netlify site id (NCW_NETLIFY_SITE_ID or the stack's netlifySiteId)", not site_id),
        )
        if missing
    ]
    if refuse or why:
        result.skipped = "Netlify not called: " + (refuse or ", ".join(why))
        result.hooks = [
            HookState(str(body.get("event")), url=mask_url((body.get("data") or {}).get("url")))
            for body in hook_bodies
        ]
        return result
    assert api_token and site_id  # checked above
    writes = register or enable_disabled
    if writes and refuse_writes:
        result.refused = f"not writing to Netlify: {refuse_writes}"
        register = enable_disabled = False
    quoted_site = urllib.parse.quote(site_id, safe="")
    try:
        listed = _netlify_call(
            "GET", api_url, f"/hooks?site_id={quoted_site}", api_token, None, timeout
        )
    except (NetlifyApiError, OSError, ValueError) as error:
        result.error = f"Netlify API: {mask_text(str(error))}"
        return result
    existing = [hook for hook in listed or [] if isinstance(hook, dict)]
    for body in hook_bodies:
        state = HookState(str(body.get("event")), url=mask_url((body.get("data") or {}).get("url")))
        result.hooks.append(state)
        found = _matching(existing, body)
        state.duplicates = max(0, len(found) - 1)
        hook = found[0] if found else None
        try:
            if hook is None and register:
                hook = (
                    _netlify_call(
                        "POST", api_url, f"/hooks?site_id={quoted_site}", api_token, body, timeout
                    )
                    or {}
                )
                state.action = "created"
            elif hook is not None and register:
                answer = _netlify_call(
                    "PUT", api_url, f"/hooks/{hook['id']}", api_token, body, timeout
                )
                hook = {**hook, **(answer or {})}
                state.action = "updated"
            if hook is not None and hook.get("disabled") and enable_disabled:
                _netlify_call(
                    "POST", api_url, f"/hooks/{hook['id']}/enable", api_token, None, timeout
                )
                hook = {**hook, "disabled": False}
                state.action = "enabled" if state.action == "none" else f"{state.action}, enabled"
        except (NetlifyApiError, OSError, ValueError) as error:
            state.error = mask_text(str(error))
        if hook is None:
            state.state = "missing"
        else:
            state.hook_id = str(hook.get("id") or "") or None
            state.state = "disabled" if hook.get("disabled") else "enabled"
    return result


def connect(
    config: RunbookConfig,
    *,
    register: bool = False,
    enable_disabled: bool = False,
    environ: Mapping[str, str] | None = None,
) -> NetlifyHooks:
    """Section 10. The API is ``NETLIFY_API_URL`` (default Netlify's), the token
    ``NETLIFY_AUTH_TOKEN``. Against the local stack (an AWS endpoint is set) only a local fake
    of the API is called: the stack's site id is the real site's."""
    env = os.environ if environ is None else environ
    api_url = env.get(API_URL_VARIABLE) or NETLIFY_API_URL
    local_api = is_local_api(api_url)
    refuse = None
    if config.aws_endpoint_url and not local_api:
        refuse = (
            f"AWS_ENDPOINT_URL is set ({config.aws_endpoint_url}): this is the local stack, and "
            f"{api_url} is not a local fake of Netlify's API"
        )
    refuse_writes = None if local_api else unreachable_for_netlify(config.webhook_url)
    return connect_netlify(
        netlify_hook_bodies(config),
        config.netlify_site_id,
        api_token=env.get(TOKEN_VARIABLE),
        api_url=api_url,
        register=register,
        enable_disabled=enable_disabled,
        refuse=refuse,
        refuse_writes=refuse_writes,
    )
