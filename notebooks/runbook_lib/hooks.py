"""Section 9, connect Netlify: create or update the site's deploy notification via the hooks API."""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra import netlify_hook
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_hook, mask_text

NETLIFY_API_URL = "https://api.netlify.com/api/v1"


def netlify_hook_body(config: RunbookConfig) -> dict[str, Any] | None:
    """The body for Netlify's hooks API: the stack's ``netlify_hook`` output, or built alike."""
    if config.netlify_hook:
        return json.loads(json.dumps(config.netlify_hook))
    if not config.webhook_url:
        return None
    return netlify_hook.hook_body(config.webhook_url, config.jws_secret)


def _same_endpoint(a: str | None, b: str | None) -> bool:
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


@dataclass
class HookSync:
    action: str  # dry-run, skipped, created, updated, failed
    hook_id: str | None = None
    body: dict[str, Any] | None = None  # masked
    message: str = ""

    def markdown(self) -> str:
        lines = [self.message]
        if self.body is not None:
            lines.append(f"\n```json\n{json.dumps(self.body, indent=2, ensure_ascii=False)}\n```")
        return "\n".join(lines)


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


def connect_netlify(
    hook_body: Mapping[str, Any] | None,
    site_id: str | None,
    *,
    api_token: str | None,
    api_url: str = NETLIFY_API_URL,
    dry_run: bool = True,
    timeout: float = 15,
    refuse: str | None = None,
) -> HookSync:
    """Create or update the site's deploy notification; never a duplicate for the same URL.

    ``GET /hooks?site_id=`` -> ``PUT /hooks/{id}`` for a url hook with the same event and the
    same endpoint (scheme, host, path; the token may have rotated), else
    ``POST /hooks?site_id=``. Never calls the API with ``refuse`` (a reason) or a URL Netlify
    cannot reach (``unreachable_for_netlify``): that would point the real site at nothing.
    """
    shown = mask_hook(hook_body)
    if hook_body is None:
        return HookSync("skipped", message="**Skipped:** no webhook URL known (see section 1).")
    refuse = refuse or unreachable_for_netlify((hook_body.get("data") or {}).get("url"))
    if refuse and not dry_run and api_token and site_id:
        return HookSync(
            "skipped",
            body=shown,
            message=f"**Skipped:** not registering this hook on Netlify: {refuse}. "
            "Connect Netlify from a run against the deployed stack.",
        )
    if dry_run or not api_token or not site_id:
        why = []
        if dry_run:
            why.append("`dry_run=True`")
        if not api_token:
            why.append("no NETLIFY_AUTH_TOKEN in the environment")
        if not site_id:
            why.append("no Netlify site id (NCW_NETLIFY_SITE_ID or the stack's netlifySiteId)")
        return HookSync(
            "dry-run",
            body=shown,
            message="Not calling Netlify (" + ", ".join(why) + "). This is the body for "
            "`POST /api/v1/hooks?site_id=...` (or enter it in Site configuration → "
            "Notifications → Deploy notifications → HTTP POST request, event 'Deploy "
            "succeeded', with the URL and the JWS secret token)"
            + (f"; it would not be sent to Netlify: {refuse}" if refuse else "")
            + ":",
        )
    quoted_site = urllib.parse.quote(site_id, safe="")
    try:
        hooks = _netlify_call(
            "GET", api_url, f"/hooks?site_id={quoted_site}", api_token, None, timeout
        )
        wanted_url = (hook_body.get("data") or {}).get("url")
        existing = next(
            (
                hook
                for hook in hooks or []
                if hook.get("type") == hook_body.get("type", "url")
                and hook.get("event") == hook_body.get("event")
                and _same_endpoint((hook.get("data") or {}).get("url"), wanted_url)
            ),
            None,
        )
        if existing:
            answer = _netlify_call(
                "PUT", api_url, f"/hooks/{existing['id']}", api_token, hook_body, timeout
            )
            hook_id, action = (answer or {}).get("id", existing["id"]), "updated"
        else:
            answer = _netlify_call(
                "POST", api_url, f"/hooks?site_id={quoted_site}", api_token, hook_body, timeout
            )
            hook_id, action = (answer or {}).get("id"), "created"
    except (NetlifyApiError, OSError, ValueError) as error:
        return HookSync("failed", body=shown, message=f"❌ Netlify API: {mask_text(str(error))}")
    return HookSync(
        action,
        hook_id=hook_id,
        body=shown,
        message=f"✅ Deploy notification {action} (hook `{hook_id}`) on site `{site_id}`.",
    )


def connect(
    config: RunbookConfig, *, dry_run: bool = True, environ: Mapping[str, str] | None = None
) -> HookSync:
    """Section 9. Against the local stack (an AWS endpoint is set) Netlify is never called: its
    site id is the real site's, and the webhook URL is this machine's."""
    env = os.environ if environ is None else environ
    return connect_netlify(
        netlify_hook_body(config),
        config.netlify_site_id,
        api_token=env.get("NETLIFY_AUTH_TOKEN"),
        api_url=env.get("NETLIFY_API_URL") or NETLIFY_API_URL,
        dry_run=dry_run,
        refuse=f"AWS_ENDPOINT_URL is set ({config.aws_endpoint_url}): this is the local stack"
        if config.aws_endpoint_url
        else None,
    )
