"""The little of Netlify's REST API the reconciler reads, and what its answers mean. Standard
library only: this module ships inside the Lambda package.

Two GETs (``getSite`` and ``listHooksBySiteId`` in Netlify's OpenAPI spec, github.com/netlify/
open-api ``swagger.yml``), each with a connect timeout, a read timeout, a hard deadline on the
whole call and a cap on the answer's size. ``http.client`` rather than ``urllib.request``: it
gives the connect and read timeouts separately, and it never follows a redirect (urllib's
redirect handler would send the ``Authorization`` header on to wherever the redirect points).

Every failure is a ``NetlifyApiError`` whose text is a short kind (``http_401``, ``timeout``,
``bad_json``...): never the token, the request's headers or the answer's body (a site holds its
password and deploys hold tokens of their own).
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

from .aws_calls import DeadlineExceeded, call_with_deadline
from .webhook_settings import PUBLISH_EVENTS

# The events a url hook of ours subscribes to, one hook per event: a new production deploy
# (``deploy_created``, the UI's "Deploy succeeded") and a deploy published by hand or rolled back
# to (``deploy_restored``). The program's hook bodies (infra.netlify_hook) use the same names.
HOOK_EVENTS = PUBLISH_EVENTS

# Operation names (Netlify's OpenAPI operationIds), for logs and error lists.
GET_SITE = "getSite"
LIST_HOOKS = "listHooksBySiteId"

# A site object is a few kilobytes, a hooks list a few hundred bytes per hook.
MAX_ANSWER_BYTES = 2 * 1024 * 1024
USER_AGENT = "netlify-cloudfront-webhook-reconciler"
# "2026-11-28T09:15:00.123456789+00:00" is 35 characters.
MAX_TIME_CHARS = 64

# What a hook's health can be, per event.
HOOK_OK = "ok"
HOOK_DISABLED = "disabled"  # only hooks of ours with disabled: true
HOOK_MISSING = "missing"  # no url hook of ours for the event at all

_DEFAULT_PORTS = {"http": 80, "https": 443}


class NetlifyApiError(Exception):
    """A failed call or an answer that is not what the API documents.

    ``kind`` is one of ``http_<status>``, ``timeout``, ``unreachable``, ``tls``, ``bad_answer``
    (a broken HTTP answer), ``too_large``, ``bad_json``, ``bad_shape``; ``status`` is the HTTP
    status when there was one. The text never holds a header or a body.
    """

    def __init__(self, kind: str, status: int | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class Timeouts:
    connect_s: float
    read_s: float
    deadline_s: float


class NetlifyClient:
    """GET requests to ``base_url`` (``https://api.netlify.com/api/v1`` or a local fake) with a
    bearer token. Holds the token; its repr does not show it."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError("the Netlify API URL must be http(s)://host[:port][/path]")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self._prefix = parts.path.rstrip("/")
        self._token = token

    def __repr__(self) -> str:
        return f"NetlifyClient({'https' if self._https else 'http'}://{self._host}:{self._port})"

    def get_json(
        self,
        operation: str,
        path: str,
        timeouts: Timeouts,
        query: Mapping[str, str] | None = None,
    ) -> object:
        """The decoded JSON of a 2xx answer to ``GET <base><path>?<query>``; NetlifyApiError
        otherwise. Never longer than ``timeouts.deadline_s`` (the call's thread is abandoned at
        the deadline and ends at its socket's next timeout)."""
        target = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        try:
            status, body = call_with_deadline(
                f"netlify-{operation}",
                timeouts.deadline_s,
                lambda: self._get(target, timeouts),
            )
        except DeadlineExceeded:
            raise NetlifyApiError("timeout") from None
        if not 200 <= status < 300:
            raise NetlifyApiError(f"http_{status}", status)
        if len(body) > MAX_ANSWER_BYTES:
            raise NetlifyApiError("too_large", status)
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise NetlifyApiError("bad_json", status) from None

    def _get(self, target: str, timeouts: Timeouts) -> tuple[int, bytes]:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=timeouts.connect_s,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=timeouts.connect_s
            )
        try:
            connection.connect()  # TCP (and TLS) under the connect timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeouts.read_s)  # then each read under this one
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            # One byte more than allowed tells "too large" from "exactly the limit".
            return response.status, response.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            raise NetlifyApiError("timeout") from None
        except ssl.SSLError:
            raise NetlifyApiError("tls") from None
        except http.client.HTTPException:  # a broken status line, a cut-off body...
            raise NetlifyApiError("bad_answer") from None
        except OSError:  # refused, reset, no route, no such host
            raise NetlifyApiError("unreachable") from None
        finally:
            connection.close()


def site_path(site_id: str) -> str:
    return f"/sites/{quote(site_id, safe='')}"


# -- what the answers mean (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class PublishedDeploy:
    """The fields of the site's ``published_deploy`` (a Deploy object) that the reconciler uses.

    ``published_at`` is kept as Netlify wrote it (it goes into the caller reference) and parsed
    into ``published`` (aware, UTC) for the comparisons.
    """

    id: str
    published_at: str
    published: datetime
    context: str | None
    site_id: str | None


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime; a time without offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _short_text(value: object, limit: int = 128) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def published_deploy(site: object) -> PublishedDeploy | None:
    """The site's published deploy; None when the site has never been published.

    NetlifyApiError("bad_shape") when the answer is not a site, or its published deploy has no
    id or no readable ``published_at``.
    """
    if not isinstance(site, dict):
        raise NetlifyApiError("bad_shape")
    deploy = site.get("published_deploy")
    if deploy is None:
        return None
    if not isinstance(deploy, dict):
        raise NetlifyApiError("bad_shape")
    deploy_id = deploy.get("id")
    published_at = deploy.get("published_at")
    if not isinstance(deploy_id, str) or not deploy_id or not isinstance(published_at, str):
        raise NetlifyApiError("bad_shape")
    if len(published_at) > MAX_TIME_CHARS:  # logged and hashed: no time is that long
        raise NetlifyApiError("bad_shape")
    published = parse_time(published_at)
    if published is None:
        raise NetlifyApiError("bad_shape")
    return PublishedDeploy(
        id=deploy_id,
        published_at=published_at,
        published=published,
        context=_short_text(deploy.get("context")),
        site_id=_short_text(deploy.get("site_id")),
    )


def _endpoint_key(url: str) -> tuple[str, int, str] | None:
    """(host, port, path) of an http(s) URL, the parts that make a hook ours; None if not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme], parts.path or "/"


def is_our_hook(hook: object, webhook_endpoint: str) -> bool:
    """A url hook whose ``data.url`` has the webhook's host, port and path (any query: the token
    in it may be an older one, and the hook is still ours to report)."""
    if not isinstance(hook, dict) or hook.get("type") != "url":
        return False
    data = hook.get("data")
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str):
        return False
    ours = _endpoint_key(webhook_endpoint)
    return ours is not None and _endpoint_key(url) == ours


@dataclass(frozen=True)
class HookHealth:
    """Per event: ``ok`` (an enabled hook of ours), ``disabled`` or ``missing``."""

    states: dict[str, str]
    enabled: dict[str, int]  # enabled hooks of ours per event (2+ means duplicate notifications)
    disabled_ids: tuple[str, ...]  # ids of our disabled hooks, for POST /hooks/{id}/enable

    @property
    def unhealthy(self) -> int:
        """The number of events without an enabled hook of ours."""
        return sum(1 for state in self.states.values() if state != HOOK_OK)


def hook_health(
    hooks: object, webhook_endpoint: str, events: Iterable[str] = HOOK_EVENTS
) -> HookHealth:
    """The health of our hooks in a ``listHooksBySiteId`` answer; NetlifyApiError("bad_shape")
    when the answer is not a list."""
    if not isinstance(hooks, list):
        raise NetlifyApiError("bad_shape")
    ours = [hook for hook in hooks if is_our_hook(hook, webhook_endpoint)]
    states: dict[str, str] = {}
    enabled: dict[str, int] = {}
    disabled_ids: list[str] = []
    for event in events:
        of_event = [hook for hook in ours if hook.get("event") == event]
        # Only a literal true disables: the spec types ``disabled`` as a boolean.
        switched_off = [hook for hook in of_event if hook.get("disabled") is True]
        enabled[event] = len(of_event) - len(switched_off)
        disabled_ids.extend(
            str(hook["id"])[:64] for hook in switched_off if isinstance(hook.get("id"), str)
        )
        if enabled[event]:
            states[event] = HOOK_OK
        else:
            states[event] = HOOK_DISABLED if switched_off else HOOK_MISSING
    return HookHealth(states=states, enabled=enabled, disabled_ids=tuple(disabled_ids))
