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
    )


_SAFE_DEPLOY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def caller_reference(deploy_id: str, paths: tuple[str, ...] | list[str]) -> str:
    """CloudFront's idempotency key for invalidating ``paths`` after deploy ``deploy_id``.

    Deterministic (no clock, no randomness): every container, and the runbook looking for the
    invalidation afterwards, derives the same reference from the same deploy and path set. The
    path set is normalized (order and repeats do not matter); a different set gives a different
    reference, because CloudFront refuses a known reference with other paths.
    """
    path_digest = hashlib.sha256("\n".join(sorted(set(paths))).encode()).hexdigest()[:16]
    if _SAFE_DEPLOY_ID.fullmatch(deploy_id):
        deploy_part = deploy_id
    else:  # keep odd ids out of the reference, still one-to-one in practice
        deploy_part = "h" + hashlib.sha256(deploy_id.encode()).hexdigest()[:32]
    return f"netlify-{deploy_part}-{path_digest}"


# The SSM SecureString named by SECRETS_PARAMETER holds JSON with these keys. The program (or
# the operator) writes it with ``secrets_value``; the handler reads it with ``parse_secrets``.
SECRETS_TOKEN_KEY = "token"  # noqa: S105 (a JSON key name, not a secret)
SECRETS_JWS_SECRET_KEY = "jws_secret"  # noqa: S105 (a JSON key name, not a secret)


@dataclass(frozen=True)
class FunctionSecrets:
    # repr=False: an accidental log of this object must not print the values.
    token: str = field(repr=False)
    jws_secret: str | None = field(default=None, repr=False)


def secrets_value(token: str, jws_secret: str | None = None) -> str:
    """The JSON to store in the SecureString parameter for ``token`` and ``jws_secret``."""
    value = {SECRETS_TOKEN_KEY: token}
    if jws_secret:
        value[SECRETS_JWS_SECRET_KEY] = jws_secret
    return json.dumps(value)


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
    jws_secret = value.get(SECRETS_JWS_SECRET_KEY)
    if jws_secret is not None and not isinstance(jws_secret, str):
        raise SettingsError(
            ENV_SECRETS_PARAMETER, f"the parameter's {SECRETS_JWS_SECRET_KEY!r} is not a string"
        )
    return FunctionSecrets(token=token, jws_secret=jws_secret or None)


# The webhook URL's query parameters: the program (and its listener rule) builds the URL
# Netlify calls with these, the handler reads them.
TOKEN_QUERY_PARAMETER = "token"  # noqa: S105 (a query parameter name, not a secret)
DISTRIBUTION_QUERY_PARAMETER = "dist"
