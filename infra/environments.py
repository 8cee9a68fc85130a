"""The Lambda functions' environments, and Lambda's 4 KB limit on them, checked at config time.

Pure (no Pulumi): the program builds each function's variables with these builders (by the
function's own settings contract, ``function.webhook_settings``), the local stack builds the
same ones, and ``check_environment_sizes`` measures what the builders would produce before any
resource exists. Values only AWS knows at deploy time (queue URLs, the function URL, the
parameter's version) are measured with stand-ins at least as long as the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from function import webhook_settings
from infra import endpoint, naming
from infra.settings import (
    DEPLOY_CONTEXTS,
    DISTRIBUTION_IDS,
    INVALIDATION_PATHS,
    NETLIFY_SITE_ID,
    WEBHOOK_PATH,
    ConfigError,
    SiteSettings,
)

# Lambda: "the total size of all environment variables doesn't exceed 4 KB". It measures the
# variables as one compact JSON object (its error quotes the "String measured: {...}"), so names,
# values, quotes, colons and commas all count.
ENVIRONMENT_MAX_BYTES = 4096

# Stand-ins for what AWS assigns at deploy time, each at least as long as the real value: a
# region name longer than any today's, the longest partition DNS suffix, a 12-digit account, a
# function URL id (32 characters) and a parameter version far beyond any real one.
_REGION = "xx-xxxxxxxxxxx-9"
_DNS_SUFFIX = "amazonaws.com.cn"
_ACCOUNT_ID = "123456789012"
_FUNCTION_URL = f"https://{'x' * 32}.lambda-url.{_REGION}.on.aws/"
_PARAMETER_VERSION = 9_999_999_999

# Which config key a variable's value comes from: the key to name when an environment is too
# large. The other variables hold names the program derives (queues, the parameter).
_CONFIG_KEY_OF = {
    webhook_settings.ENV_DISTRIBUTION_IDS: DISTRIBUTION_IDS,
    webhook_settings.ENV_INVALIDATION_PATHS: INVALIDATION_PATHS,
    webhook_settings.ENV_DEPLOY_CONTEXTS: DEPLOY_CONTEXTS,
    webhook_settings.ENV_NETLIFY_SITE_ID: NETLIFY_SITE_ID,
    webhook_settings.ENV_WEBHOOK_PATH: WEBHOOK_PATH,
    webhook_settings.ENV_WEBHOOK_ENDPOINT: WEBHOOK_PATH,
}
_REMEDY = {
    INVALIDATION_PATHS: "fewer or shorter paths, e.g. '/blog/*' instead of each page under it",
    DISTRIBUTION_IDS: "fewer distributions per stack: split the site's distributions into stacks",
}


def function_environment(
    settings: SiteSettings, parameter_name: str, queue_url: str
) -> dict[str, str]:
    """The ingest's environment, as the function's own ``load_settings`` reads it (one contract).

    ``WEBHOOK_PATH`` in both modes: behind a function URL it is what makes the ingest answer 404
    to other paths; behind the ALB the rule routes only that path anyway.
    """
    return webhook_settings.FunctionSettings(
        distribution_ids=settings.distribution_ids,
        secrets_parameter=parameter_name,
        queue_url=queue_url,
        invalidation_paths=settings.invalidation_paths,
        deploy_contexts=settings.deploy_contexts,
        netlify_site_id=settings.netlify_site_id,
        webhook_path=settings.webhook_path,
    ).to_environment()


def worker_environment(settings: SiteSettings, dead_letter_queue_url: str) -> dict[str, str]:
    """The worker's environment, as ``load_worker_settings`` reads it."""
    return webhook_settings.WorkerSettings(
        distribution_ids=settings.distribution_ids,
        dead_letter_queue_url=dead_letter_queue_url,
    ).to_environment()


def reconciler_environment(
    settings: SiteSettings,
    *,
    stack: str,
    parameter_name: str,
    queue_url: str,
    webhook_endpoint: str,
    dead_letter_queue_url: str,
) -> dict[str, str]:
    """The reconciler's environment, as ``load_reconciler_settings`` reads it.

    ``webhook_endpoint`` is the webhook URL without its query: no token in the environment. The
    Netlify API token stays in the parameter.
    """
    if settings.netlify_site_id is None:
        raise ValueError("the reconciler needs the site's netlify_site_id")
    return webhook_settings.ReconcilerSettings(
        netlify_site_id=settings.netlify_site_id,
        distribution_ids=settings.distribution_ids,
        secrets_parameter=parameter_name,
        queue_url=queue_url,
        webhook_endpoint=webhook_endpoint,
        stack_name=stack,
        invalidation_paths=settings.invalidation_paths,
        dead_letter_queue_url=dead_letter_queue_url,
    ).to_environment()


def with_secrets_version(variables: Mapping[str, str], version: object) -> dict[str, str]:
    """``variables`` plus the secrets parameter's version: a rotated secret changes the
    function's configuration, so Lambda replaces the containers that cached the old one."""
    return {**variables, webhook_settings.ENV_SECRETS_VERSION: str(version)}


def environment_size(variables: Mapping[str, str]) -> int:
    """The size Lambda counts against ENVIRONMENT_MAX_BYTES: the variables as compact JSON."""
    compact = json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
    return len(compact.encode("utf-8"))


def _queue_url(name: str) -> str:
    return f"https://sqs.{_REGION}.{_DNS_SUFFIX}/{_ACCOUNT_ID}/{name}"


def config_time_environments(settings: SiteSettings, stack: str) -> dict[str, dict[str, str]]:
    """Each function's environment as the program will write it, by function ("ingest",
    "worker", "reconciler" when enabled), with stand-ins for the deploy-time values."""
    domain = settings.domain
    parameter_name = naming.secrets_parameter_name(stack, domain)
    queue_url = _queue_url(naming.queue_name(stack, domain))
    environments = {
        "ingest": with_secrets_version(
            function_environment(settings, parameter_name, queue_url), _PARAMETER_VERSION
        ),
        "worker": worker_environment(
            settings, _queue_url(naming.dead_letter_queue_name(stack, domain))
        ),
    }
    if settings.reconciler_enabled:
        base_url = _FUNCTION_URL if settings.uses_function_url else endpoint.alb_base_url(domain)
        environments["reconciler"] = with_secrets_version(
            reconciler_environment(
                settings,
                stack=stack,
                parameter_name=parameter_name,
                queue_url=queue_url,
                webhook_endpoint=endpoint.webhook_endpoint(base_url, settings.webhook_path),
                dead_letter_queue_url=_queue_url(naming.dead_letter_queue_name(stack, domain)),
            ),
            _PARAMETER_VERSION,
        )
    return environments


def check_environment_sizes(settings: SiteSettings, stack: str) -> None:
    """ConfigError naming the config key that makes a function's environment exceed Lambda's
    4 KB, before any resource exists (Lambda would refuse the function half way through a
    deploy)."""
    for function, variables in config_time_environments(settings, stack).items():
        size = environment_size(variables)
        if size <= ENVIRONMENT_MAX_BYTES:
            continue
        # The largest variable that comes from config is what to shorten.
        variable = max(
            (name for name in variables if name in _CONFIG_KEY_OF),
            key=lambda name: len(name) + len(variables[name]),
        )
        key = _CONFIG_KEY_OF[variable]
        raise ConfigError(
            key,
            f"the {function} function's Lambda environment would take {size} bytes, "
            f"{variable} alone {len(variables[variable])}",
            f"at most {ENVIRONMENT_MAX_BYTES} bytes of variable names and values per function "
            f"(Lambda's limit): {_REMEDY.get(key, 'a shorter value')}",
        )
