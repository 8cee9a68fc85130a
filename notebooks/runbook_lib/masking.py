"""Masking: nothing the runbook shows carries a whole secret."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from infra.netlify_hook import JWS_SECRET_DATA_KEY

_SECRET_QUERY = re.compile(
    r"(?P<key>(?:^|[?&;])(?:token|secret|signature|key|access_token)=)(?P<value>[^&#;\s]*)",
    re.IGNORECASE,
)
_SECRET_TEXT = re.compile(
    r"(?P<key>(?:token|secret|signature_secret|jws_secret|signature|authorization)"
    r"""["']?\s*[:=]\s*["']?(?:bearer\s+)?)(?P<value>[^"'&\s,;}]+)""",
    re.IGNORECASE,
)


def mask_secret(value: str | None, keep: int = 4) -> str:
    """``abcd…``: enough to tell two secrets apart, not enough to use one."""
    if not value:
        return ""
    return value[:keep] + "…" if len(value) > 2 * keep else "…"


def mask_url(url: str | None) -> str:
    """The URL with the value of ``token`` (and other secret-looking query keys) masked."""
    if not url:
        return ""
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    masked = _SECRET_QUERY.sub(lambda m: m.group("key") + mask_secret(m.group("value")), "?" + rest)
    return base + masked


def mask_text(text: str) -> str:
    """Free text (a log line, an error body) with anything token-like masked."""
    return _SECRET_TEXT.sub(lambda m: m.group("key") + mask_secret(m.group("value")), text)


def mask_hook(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Netlify hook body safe to show: the URL's token and the JWS secret masked."""
    if body is None:
        return None
    shown = json.loads(json.dumps(body))
    data = shown.get("data") or {}
    if "url" in data:
        data["url"] = mask_url(data["url"])
    if data.get(JWS_SECRET_DATA_KEY):
        data[JWS_SECRET_DATA_KEY] = mask_secret(data[JWS_SECRET_DATA_KEY])
    return shown
