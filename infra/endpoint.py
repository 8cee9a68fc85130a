"""The webhook's URL in both endpoint modes, built in one place.

Pure (no Pulumi): the program builds the ``webhook_url`` output and the reconciler's
``WEBHOOK_ENDPOINT`` with it, and the local stack builds the same URLs for its stand-ins.
"""

from __future__ import annotations

from function import webhook_settings

TOKEN_QUERY_KEY = webhook_settings.TOKEN_QUERY_PARAMETER


def alb_base_url(domain: str) -> str:
    """The ALB endpoint's origin: HTTPS on the site's domain."""
    return f"https://{domain}"


def webhook_endpoint(base_url: str, webhook_path: str) -> str:
    """The webhook URL without its query: ``<base without trailing slash><path>``.

    ``base_url`` is the ALB's origin or the function URL, which Lambda reports with a trailing
    slash (``https://<id>.lambda-url.<region>.on.aws/``). Not secret: it carries no token.
    """
    return f"{base_url.rstrip('/')}{webhook_path}"


def webhook_url(base_url: str, webhook_path: str, token: str) -> str:
    """The URL Netlify calls (secret: it carries the token)."""
    return f"{webhook_endpoint(base_url, webhook_path)}?{TOKEN_QUERY_KEY}={token}"
