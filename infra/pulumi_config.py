"""Read the stack's config through Pulumi and validate it before any resource exists.

Validation needs the plain values, secrets included (the token's characters decide whether the
ALB rule can match it). They are read with ``pulumi.runtime.get_config``, the same lookup
``pulumi.Config`` uses, and only reach ``parse_site_config``, whose messages never contain a
secret. What flows into resources comes from ``require_secret``/``get_secret``, so Pulumi keeps
it encrypted in the state and masked in every log and output.

(``pulumi.Config.get`` on a secret key would work too: the SDK's "use get_secret instead" warning
is commented out in pulumi 3.x, TODO pulumi/pulumi#7127. The runtime lookup stays quiet even if
that warning comes back.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.environments import check_environment_sizes
from infra.settings import (
    ALL_KEYS,
    NETLIFY_API_TOKEN,
    NETLIFY_JWS_SECRET,
    PROJECT,
    SECRET_KEYS,
    WEBHOOK_TOKEN,
    ConfigError,
    SiteSettings,
    parse_site_config,
)


@dataclass(frozen=True)
class StackConfig:
    """Validated settings plus the secrets as Pulumi secret outputs (for resource inputs)."""

    settings: SiteSettings
    webhook_token: pulumi.Output[str]
    netlify_jws_secret: pulumi.Output[str] | None
    netlify_api_token: pulumi.Output[str] | None = None


def raw_config() -> dict[str, object]:
    """The project's config values as the CLI passed them (text; JSON for arrays/integers)."""
    raw: dict[str, object] = {}
    for key in ALL_KEYS:
        value = pulumi.runtime.get_config(f"{PROJECT}:{key}")
        if value is not None:
            raw[key] = value
    return raw


def require_encrypted(raw: dict[str, object]) -> None:
    """A secret key that holds a value must have been set with ``--secret``.

    ``webhookToken`` is ``secret: true`` in Pulumi.yaml, so the CLI enforces it already; the
    optional ``netlifyJwsSecret`` and ``netlifyApiToken`` cannot be (their empty defaults would
    be refused as plain text), so the program checks all three the same way.
    """
    for key in SECRET_KEYS:
        value = raw.get(key)
        is_set = isinstance(value, str) and bool(value.strip())
        if is_set and not pulumi.runtime.is_config_secret(f"{PROJECT}:{key}"):
            raise ConfigError(
                key,
                "is stored in plain text in the stack file",
                f"an encrypted value: pulumi config set --secret {key} <value>",
            )


def read_stack_config() -> StackConfig:
    """Validate the whole config, then wrap the secrets. Call before registering any resource.

    The first bad value ends the program as a ``pulumi.RunError`` (the CLI prints its message,
    without a stack trace) caused by the ``ConfigError`` naming the key. That includes a
    function environment Lambda would refuse as over 4 KB (names depend on the stack).
    """
    raw = raw_config()
    try:
        require_encrypted(raw)
        settings = parse_site_config(raw)
        check_environment_sizes(settings, pulumi.get_stack())
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from error
    config = pulumi.Config(PROJECT)
    token = config.require_secret(WEBHOOK_TOKEN).apply(str.strip)
    jws_secret = None
    if settings.netlify_jws_secret is not None:
        jws_secret = config.require_secret(NETLIFY_JWS_SECRET).apply(str.strip)
    api_token = None
    if settings.netlify_api_token is not None:
        api_token = config.require_secret(NETLIFY_API_TOKEN).apply(str.strip)
    return StackConfig(
        settings=settings,
        webhook_token=token,
        netlify_jws_secret=jws_secret,
        netlify_api_token=api_token,
    )
