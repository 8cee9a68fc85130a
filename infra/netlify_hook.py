"""The Netlify hooks-API bodies for the site's deploy notifications, built in one place.

Pure (no Pulumi): the program exports them as the ``netlify_hooks`` stack output and the
operator runbook builds the same bodies when it has no stack outputs to read them from. One hook
subscribes to one event, so the site needs one per event in ``EVENTS``: a new production deploy
(``deploy_created``) and a deploy published by hand or rolled back to (``deploy_restored``).
"""

from __future__ import annotations

from typing import Any

from function import webhook_settings

# The events' names live with the function, which acts on the same two.
EVENT = webhook_settings.DEPLOY_CREATED_EVENT  # the API name of the UI's "Deploy succeeded"
RESTORED_EVENT = webhook_settings.DEPLOY_RESTORED_EVENT  # a deploy published by hand
EVENTS = webhook_settings.PUBLISH_EVENTS
# The key of a url hook's ``data`` that holds the "JWS secret token". Netlify's OpenAPI spec types
# ``Hook.data`` as a free-form object and the deploy-notifications docs only name the UI field, so
# this key comes from integrations that create signed hooks through the API (e.g. simstudioai/sim
# PR #4518, "passed via data.signature_secret"). If Netlify ever renames it, the function's
# signature check fails loudly (401), it does not silently accept unsigned requests.
JWS_SECRET_DATA_KEY = "signature_secret"  # noqa: S105 (a key name, not a secret)


def hook_body(url: str, jws_secret: str | None, event: str = EVENT) -> dict[str, Any]:
    """Body for ``POST https://api.netlify.com/api/v1/hooks?site_id=<site>``."""
    data: dict[str, Any] = {"url": url}
    if jws_secret:
        data[JWS_SECRET_DATA_KEY] = jws_secret
    return {"type": "url", "event": event, "data": data}


def hook_bodies(url: str, jws_secret: str | None) -> list[dict[str, Any]]:
    """One body per event in ``EVENTS``: the same URL and JWS secret."""
    return [hook_body(url, jws_secret, event) for event in EVENTS]
