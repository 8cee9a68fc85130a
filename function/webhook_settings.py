"""The function's settings: the environment contract shared with the Pulumi program.

The Pulumi program writes these variables (``infra`` imports the names from here) and the
handler reads them, so the names and their rules live in exactly one place. Standard library
only: this module ships inside the Lambda package.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_DISTRIBUTION_IDS = "DISTRIBUTION_IDS"
ENV_INVALIDATION_PATHS = "INVALIDATION_PATHS"
ENV_DEPLOY_CONTEXTS = "DEPLOY_CONTEXTS"
ENV_NETLIFY_SITE_ID = "NETLIFY_SITE_ID"
ENV_SECRETS_PARAMETER = "SECRETS_PARAMETER"
# The ingest sends one message per distribution to this queue; the worker sends what can never
# succeed to the dead-letter queue.
ENV_QUEUE_URL = "QUEUE_URL"
ENV_DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"
# The webhook's URL path. Behind a function URL (no ALB rule in front) the ingest answers 404 to
# any other path before reading anything else; ALB events are routed by the rule already.
ENV_WEBHOOK_PATH = "WEBHOOK_PATH"
# The reconciler: Netlify's API, the webhook URL without its token (to recognise our hooks), and
# the stack's name (the dimension of its CloudWatch metrics).
ENV_NETLIFY_API_URL = "NETLIFY_API_URL"
ENV_WEBHOOK_ENDPOINT = "WEBHOOK_ENDPOINT"
ENV_STACK_NAME = "STACK_NAME"
DEFAULT_NETLIFY_API_URL = "https://api.netlify.com/api/v1"
# The secrets parameter's version, written by the program and never read by the handler: a
# rotated token or JWS secret changes it, so the function's configuration changes and Lambda
# replaces the warm containers that cached the old secrets.
ENV_SECRETS_VERSION = "SECRETS_VERSION"

DEFAULT_INVALIDATION_PATHS = ("/*",)
DEFAULT_DEPLOY_CONTEXTS = ("production",)
KNOWN_DEPLOY_CONTEXTS = ("production", "deploy-preview", "branch-deploy")
# CloudFront accepts at most 3,000 paths in one invalidation batch.
MAX_INVALIDATION_PATHS = 3000

_DISTRIBUTION_ID = re.compile(r"[A-Za-z0-9]+")
# SSM parameter names: letters, digits and . - _ /, at most 2048 characters.
_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_.\-/]{1,2048}")
# An SQS queue URL: <scheme>://<host>/<12-digit account>/<queue name of 1-80 characters>.
_QUEUE_URL = re.compile(
    r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?/[0-9]{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?"
)
# An SQS queue ARN: arn:<partition>:sqs:<region>:<account>:<name>.
_QUEUE_ARN = re.compile(r"arn:(aws[a-z-]*):sqs:([a-z0-9-]+):([0-9]{12}):([A-Za-z0-9_.-]{1,80})")


class SettingsError(ValueError):
    """A bad setting; ``variable`` names the environment variable at fault."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True)
class FunctionSettings:
    """The ingest's settings (``function.handler``)."""

    distribution_ids: tuple[str, ...]
    secrets_parameter: str
    queue_url: str
    invalidation_paths: tuple[str, ...] = DEFAULT_INVALIDATION_PATHS
    deploy_contexts: tuple[str, ...] = DEFAULT_DEPLOY_CONTEXTS
    netlify_site_id: str | None = None
    webhook_path: str | None = None

    def to_environment(self) -> dict[str, str]:
        """The environment variables that make ``load_settings`` return these settings."""
        env = {
            ENV_DISTRIBUTION_IDS: ",".join(self.distribution_ids),
            ENV_INVALIDATION_PATHS: ",".join(self.invalidation_paths),
            ENV_DEPLOY_CONTEXTS: ",".join(self.deploy_contexts),
            ENV_SECRETS_PARAMETER: self.secrets_parameter,
            ENV_QUEUE_URL: self.queue_url,
        }
        if self.netlify_site_id:
            env[ENV_NETLIFY_SITE_ID] = self.netlify_site_id
        if self.webhook_path:
            env[ENV_WEBHOOK_PATH] = self.webhook_path
        return env


def split_list(raw: str) -> list[str]:
    """Comma-separated items, surrounding blanks removed, empty items dropped."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def invalidation_path_problem(path: str) -> str | None:
    """Why CloudFront would refuse ``path`` as an invalidation path, or None when it is fine."""
    if not path.startswith("/"):
        return f"path {path!r} must start with '/'"
    if "*" in path[:-1]:
        return f"path {path!r} may hold '*' only as its last character"
    if any(ch.isspace() for ch in path):
        return f"path {path!r} must not contain blanks; percent-encode them"
    if "," in path:  # the environment joins the paths with commas
        return f"path {path!r} must not contain ','; percent-encode it as %2C"
    return None


def validate_invalidation_paths(paths: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Paths as CloudFront accepts them, or ValueError saying which one is wrong and why."""
    if not paths:
        raise ValueError("at least one path is needed")
    if len(paths) > MAX_INVALIDATION_PATHS:
        raise ValueError(f"{len(paths)} paths given; at most {MAX_INVALIDATION_PATHS} allowed")
    for path in paths:
        problem = invalidation_path_problem(path)
        if problem:
            raise ValueError(problem)
    return tuple(paths)


@dataclass(frozen=True)
class WorkerSettings:
    """The worker's settings (``function.worker``)."""

    distribution_ids: tuple[str, ...]
    dead_letter_queue_url: str

    def to_environment(self) -> dict[str, str]:
        return {
            ENV_DISTRIBUTION_IDS: ",".join(self.distribution_ids),
            ENV_DEAD_LETTER_QUEUE_URL: self.dead_letter_queue_url,
        }


def load_distribution_ids(environ: Mapping[str, str]) -> tuple[str, ...]:
    """``DISTRIBUTION_IDS``: required, letters and digits, repeats dropped."""
    ids = split_list(environ.get(ENV_DISTRIBUTION_IDS, ""))
    if not ids:
        raise SettingsError(ENV_DISTRIBUTION_IDS, "required: comma-separated distribution ids")
    for dist_id in ids:
        if not _DISTRIBUTION_ID.fullmatch(dist_id):
            raise SettingsError(
                ENV_DISTRIBUTION_IDS, f"{dist_id!r} is not an id (letters and digits only)"
            )
    return tuple(dict.fromkeys(ids))


def load_queue_url(environ: Mapping[str, str], variable: str) -> str:
    """A required SQS queue URL from ``variable``; SettingsError naming it when malformed."""
    url = environ.get(variable, "").strip()
    if not url:
        raise SettingsError(variable, "required: the SQS queue URL")
    if not _QUEUE_URL.fullmatch(url):
        raise SettingsError(
            variable, "not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"
        )
    return url


def queue_url_from_arn(arn: str) -> str | None:
    """The queue URL for an SQS queue ARN (an SQS record's ``eventSourceARN``), or None."""
    match = _QUEUE_ARN.fullmatch(arn or "")
    if match is None:
        return None
    partition, region, account, name = match.groups()
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


def load_worker_settings(environ: Mapping[str, str]) -> WorkerSettings:
    """The worker's settings; SettingsError names the variable at fault."""
    return WorkerSettings(
        distribution_ids=load_distribution_ids(environ),
        dead_letter_queue_url=load_queue_url(environ, ENV_DEAD_LETTER_QUEUE_URL),
    )


def load_settings(environ: Mapping[str, str]) -> FunctionSettings:
    """Read and validate the ingest's settings; SettingsError names the variable at fault."""
    ids = load_distribution_ids(environ)

    paths = split_list(environ.get(ENV_INVALIDATION_PATHS, "")) or list(DEFAULT_INVALIDATION_PATHS)
    try:
        validate_invalidation_paths(paths)
    except ValueError as error:
        raise SettingsError(ENV_INVALIDATION_PATHS, str(error)) from None

    contexts = split_list(environ.get(ENV_DEPLOY_CONTEXTS, "")) or list(DEFAULT_DEPLOY_CONTEXTS)

    parameter = environ.get(ENV_SECRETS_PARAMETER, "").strip()
    if not parameter:
        raise SettingsError(ENV_SECRETS_PARAMETER, "required: name of the SSM SecureString")
    if not _PARAMETER_NAME.fullmatch(parameter):
        raise SettingsError(
            ENV_SECRETS_PARAMETER, "not an SSM parameter name (letters, digits, . - _ /)"
        )

    queue_url = load_queue_url(environ, ENV_QUEUE_URL)
    site_id = environ.get(ENV_NETLIFY_SITE_ID, "").strip() or None
    return FunctionSettings(
        distribution_ids=ids,
        secrets_parameter=parameter,
        queue_url=queue_url,
        invalidation_paths=tuple(paths),
        deploy_contexts=tuple(dict.fromkeys(contexts)),
        netlify_site_id=site_id,
        webhook_path=load_webhook_path(environ),
    )


_WEBHOOK_PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,127}")


def load_webhook_path(environ: Mapping[str, str]) -> str | None:
    """``WEBHOOK_PATH``: optional; a plain URL path (``/`` + letters, digits and ``._~/-``)."""
    path = environ.get(ENV_WEBHOOK_PATH, "").strip()
    if not path:
        return None
    if not _WEBHOOK_PATH.fullmatch(path):
        raise SettingsError(
            ENV_WEBHOOK_PATH, "not a plain URL path ('/' then letters, digits and . _ ~ / -)"
        )
    return path


@dataclass(frozen=True)
class ReconcilerSettings:
    """The reconciler's settings (``function.reconciler``)."""

    netlify_site_id: str
    distribution_ids: tuple[str, ...]
    secrets_parameter: str
    queue_url: str
    webhook_endpoint: str
    stack_name: str
    invalidation_paths: tuple[str, ...] = DEFAULT_INVALIDATION_PATHS
    netlify_api_url: str = DEFAULT_NETLIFY_API_URL
    # Optional: while the dead-letter queue holds messages, a repair is not queued again (it
    # would only end there too, every run, until the cause is fixed).
    dead_letter_queue_url: str | None = None

    def to_environment(self) -> dict[str, str]:
        env = {
            ENV_NETLIFY_SITE_ID: self.netlify_site_id,
            ENV_DISTRIBUTION_IDS: ",".join(self.distribution_ids),
            ENV_INVALIDATION_PATHS: ",".join(self.invalidation_paths),
            ENV_SECRETS_PARAMETER: self.secrets_parameter,
            ENV_QUEUE_URL: self.queue_url,
            ENV_WEBHOOK_ENDPOINT: self.webhook_endpoint,
            ENV_STACK_NAME: self.stack_name,
            ENV_NETLIFY_API_URL: self.netlify_api_url,
        }
        if self.dead_letter_queue_url:
            env[ENV_DEAD_LETTER_QUEUE_URL] = self.dead_letter_queue_url
        return env


_HTTP_URL = re.compile(r"https?://[^\s?#]+")


def load_reconciler_settings(environ: Mapping[str, str]) -> ReconcilerSettings:
    """The reconciler's settings; SettingsError names the variable at fault."""
    site_id = environ.get(ENV_NETLIFY_SITE_ID, "").strip()
    if not site_id:
        raise SettingsError(ENV_NETLIFY_SITE_ID, "required: the Netlify site API id")
    paths = split_list(environ.get(ENV_INVALIDATION_PATHS, "")) or list(DEFAULT_INVALIDATION_PATHS)
    try:
        validate_invalidation_paths(paths)
    except ValueError as error:
        raise SettingsError(ENV_INVALIDATION_PATHS, str(error)) from None
    parameter = environ.get(ENV_SECRETS_PARAMETER, "").strip()
    if not _PARAMETER_NAME.fullmatch(parameter):
        raise SettingsError(ENV_SECRETS_PARAMETER, "required: name of the SSM SecureString")
    endpoint = environ.get(ENV_WEBHOOK_ENDPOINT, "").strip()
    if not _HTTP_URL.fullmatch(endpoint):
        raise SettingsError(
            ENV_WEBHOOK_ENDPOINT, "required: the webhook URL without its query (no token)"
        )
    stack = environ.get(ENV_STACK_NAME, "").strip()
    if not stack:
        raise SettingsError(ENV_STACK_NAME, "required: the stack's name (metric dimension)")
    api_url = environ.get(ENV_NETLIFY_API_URL, "").strip() or DEFAULT_NETLIFY_API_URL
    if not _HTTP_URL.fullmatch(api_url):
        raise SettingsError(ENV_NETLIFY_API_URL, "not an http(s) URL")
    return ReconcilerSettings(
        netlify_site_id=site_id,
        distribution_ids=load_distribution_ids(environ),
        secrets_parameter=parameter,
        queue_url=load_queue_url(environ, ENV_QUEUE_URL),
        webhook_endpoint=endpoint,
        stack_name=stack,
        invalidation_paths=tuple(paths),
        netlify_api_url=api_url.rstrip("/"),
        dead_letter_queue_url=(
            load_queue_url(environ, ENV_DEAD_LETTER_QUEUE_URL)
            if environ.get(ENV_DEAD_LETTER_QUEUE_URL, "").strip()
            else None
        ),
    )


_SAFE_DEPLOY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _utf8(text: str) -> bytes:
    # A lone UTF-16 surrogate (a JSON "\\ud800" escape) must not make hashing raise.
    return text.encode("utf-8", "surrogatepass")


def reference_deploy_part(deploy_id: str) -> str:
    """The deploy's part of its caller references: the id itself when it is a plain
    ``[A-Za-z0-9_-]{1,64}``, else ``h.`` + 32 hex digits of its SHA-256. The dot cannot occur in
    a plain id, so no id's part equals another id's hashed part: the mapping is one-to-one."""
    if _SAFE_DEPLOY_ID.fullmatch(deploy_id):
        return deploy_id
    return "h." + hashlib.sha256(_utf8(deploy_id)).hexdigest()[:32]


def reference_prefix(deploy_id: str) -> str:
    """What every caller reference of ``deploy_id`` starts with (the runbook searches by it)."""
    return f"netlify-{reference_deploy_part(deploy_id)}-"


def caller_reference(
    deploy_id: str,
    paths: tuple[str, ...] | list[str],
    *,
    event: str | None = None,
    published_at: str | None = None,
    updated_at: str | None = None,
) -> str:
    """CloudFront's idempotency key for one publish of deploy ``deploy_id``:
    ``netlify-<deploy part>-<16 hex digits>``.

    Deterministic (no clock, no randomness): every container, every redelivery of the same
    notification and every retry derive the same reference. The digest covers the event, the
    deploy's ``published_at`` and ``updated_at`` and the normalized path set (order and repeats
    do not matter), so each publish of a deploy (a rollback restores the same deploy again, with
    a new ``published_at``) gets a reference of its own, and another path set another one
    (CloudFront refuses a known reference with other paths).
    """
    digest_input = json.dumps(
        [event, published_at, updated_at, sorted(set(paths))], ensure_ascii=True
    )
    digest = hashlib.sha256(_utf8(digest_input)).hexdigest()[:16]
    return f"{reference_prefix(deploy_id)}{digest}"


# The SSM SecureString named by SECRETS_PARAMETER holds JSON with these keys. The program (or
# the operator) writes it with ``secrets_value``; the handler reads it with ``parse_secrets``.
SECRETS_TOKEN_KEY = "token"  # noqa: S105 (a JSON key name, not a secret)
SECRETS_JWS_SECRET_KEY = "jws_secret"  # noqa: S105 (a JSON key name, not a secret)
# A Netlify personal access token, for the reconciler only (optional).
SECRETS_NETLIFY_API_TOKEN_KEY = "netlify_api_token"  # noqa: S105 (a JSON key name)


@dataclass(frozen=True)
class FunctionSecrets:
    # repr=False: an accidental log of this object must not print the values.
    token: str = field(repr=False)
    jws_secret: str | None = field(default=None, repr=False)
    netlify_api_token: str | None = field(default=None, repr=False)


# The webhook token: what the program accepts for ``webhookToken``, and so what the function
# accepts from the parameter (nothing the ALB rule would read as a wildcard).
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
TOKEN_RULE = "16-128 characters from A-Z a-z 0-9 _ -"  # noqa: S105 (a rule, not a secret)


def secrets_value(
    token: str, jws_secret: str | None = None, netlify_api_token: str | None = None
) -> str:
    """The JSON to store in the SecureString parameter for the site's secrets."""
    value = {SECRETS_TOKEN_KEY: token}
    if jws_secret:
        value[SECRETS_JWS_SECRET_KEY] = jws_secret
    if netlify_api_token:
        value[SECRETS_NETLIFY_API_TOKEN_KEY] = netlify_api_token
    return json.dumps(value)


def _optional_secret(value: dict, key: str) -> str | None:
    """An optional secret of the parameter: a string that is valid text (no lone surrogate)."""
    secret = value.get(key)
    if secret is None:
        return None
    if not isinstance(secret, str):
        raise SettingsError(ENV_SECRETS_PARAMETER, f"the parameter's {key!r} is not a string")
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:
        raise SettingsError(
            ENV_SECRETS_PARAMETER, f"the parameter's {key!r} is not valid text"
        ) from None
    return secret or None


def parse_secrets(raw: str) -> FunctionSecrets:
    """The secrets in the parameter's value; SettingsError (naming SECRETS_PARAMETER) if bad.

    The error never quotes the value: it is the secret.
    """
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise SettingsError(
            ENV_SECRETS_PARAMETER,
            f'the parameter\'s value is not a JSON object {{"{SECRETS_TOKEN_KEY}": ...}}',
        )
    token = value.get(SECRETS_TOKEN_KEY)
    if not isinstance(token, str) or not token:
        raise SettingsError(
            ENV_SECRETS_PARAMETER, f"the parameter's {SECRETS_TOKEN_KEY!r} is missing or empty"
        )
    if not TOKEN_PATTERN.fullmatch(token):
        raise SettingsError(
            ENV_SECRETS_PARAMETER,
            f"the parameter's {SECRETS_TOKEN_KEY!r} is not {TOKEN_RULE}",
        )
    return FunctionSecrets(
        token=token,
        jws_secret=_optional_secret(value, SECRETS_JWS_SECRET_KEY),
        netlify_api_token=_optional_secret(value, SECRETS_NETLIFY_API_TOKEN_KEY),
    )


# The Netlify events that change what production serves, one url hook each: a new production
# deploy ("Deploy succeeded" in the UI) and a deploy published by hand or rolled back to
# ("Deploy restored"). The ingest acts on these; the program registers a hook for each.
DEPLOY_CREATED_EVENT = "deploy_created"
DEPLOY_RESTORED_EVENT = "deploy_restored"
PUBLISH_EVENTS = (DEPLOY_CREATED_EVENT, DEPLOY_RESTORED_EVENT)


# The webhook URL's query parameters: the program (and its listener rule) builds the URL
# Netlify calls with these, the handler reads them.
TOKEN_QUERY_PARAMETER = "token"  # noqa: S105 (a query parameter name, not a secret)
DISTRIBUTION_QUERY_PARAMETER = "dist"
