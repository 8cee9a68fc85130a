"""The Netlify hooks-API body for the site's deploy notification, built in one place.

Pure (no Pulumi): the program exports it as the ``netlify_hook`` stack output and the operator
runbook builds the same body when it has no stack outputs to read it from.
"""

from __future__ import annotations

from typing import Any

EVENT = "deploy_created"  # the API name of the UI's "Deploy succeeded"
# The key of a url hook's ``data`` that holds the "JWS secret token". Netlify's OpenAPI spec types
# ``Hook.data`` as a free-form object and the deploy-notifications docs only name the UI field, so
# this key comes from integrations that create signed hooks through the API (e.g. simstudioai/sim
# PR #4518, "passed via data.signature_secret"). If Netlify ever renames it, the function's
# signature check fails loudly (401), it does not silently accept unsigned requests.
JWS_SECRET_DATA_KEY = "signature_secret"  # noqa: S105 (a key name, not a secret)


def hook_body(url: str, jws_secret: str | None) -> dict[str, Any]:
    """Body for ``POST https://api.netlify.com/api/v1/hooks?site_id=<site>``."""
    data: dict[str, Any] = {"url": url}
    if jws_secret:
        data[JWS_SECRET_DATA_KEY] = jws_secret
    return {"type": "url", "event": EVENT, "data": data}
