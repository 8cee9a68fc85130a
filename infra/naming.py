"""Physical names and tags derived from the stack and the site's domain.

Names that other parts must know in advance are chosen here, not auto-generated: the Lambda
function (its log group is ``/aws/lambda/<function name>`` and is created before the function)
and the SSM parameter (the function reads its name from the environment).

A site behind a function URL has no domain (``domain`` is ""): its names are the stack's alone,
``ncw-<stack>``, ``ncw-<stack>-worker``, ``/netlify-cloudfront-webhook/<stack>/secrets``; stack
names are unique within the project, so these are too.
"""

from __future__ import annotations

import hashlib
import re

from infra.settings import PROJECT

FUNCTION_NAME_PREFIX = "ncw"
_LAMBDA_NAME_MAX = 64
_NOT_LAMBDA_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _short_name(name: str, limit: int = _LAMBDA_NAME_MAX) -> str:
    """``name`` with characters Lambda and SQS refuse as dashes; shortened with a hash if long."""
    name = _NOT_LAMBDA_NAME.sub("-", name).strip("-")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def _base(stack: str, domain: str) -> str:
    """``ncw-<stack>-<domain>``, or ``ncw-<stack>`` without a domain (no empty part)."""
    return "-".join(part for part in (FUNCTION_NAME_PREFIX, stack, domain) if part)


def function_name(stack: str, domain: str) -> str:
    """The ingest: ``ncw-<stack>-<domain with dots as dashes>``; shortened when over 64."""
    return _short_name(_base(stack, domain))


def worker_function_name(stack: str, domain: str) -> str:
    """The worker: the ingest's name + ``-worker``, within Lambda's 64 characters."""
    return _short_name(f"{_base(stack, domain)}-worker")


def reconciler_function_name(stack: str, domain: str) -> str:
    """The reconciler: the ingest's name + ``-reconciler``, within Lambda's 64 characters."""
    return _short_name(f"{_base(stack, domain)}-reconciler")


def reconciler_schedule_name(stack: str, domain: str) -> str:
    """The reconciler's EventBridge rule (names: at most 64 of A-Z a-z 0-9 . - _)."""
    return _short_name(f"{_base(stack, domain)}-reconcile")


def queue_name(stack: str, domain: str) -> str:
    """The invalidation queue (SQS names: at most 80 of A-Z a-z 0-9 - _)."""
    return _short_name(f"{_base(stack, domain)}-invalidations", 80)


def dead_letter_queue_name(stack: str, domain: str) -> str:
    return _short_name(f"{_base(stack, domain)}-dead-letters", 80)


def log_group_name(function: str) -> str:
    """The log group Lambda writes to by default; created by the program with a retention."""
    return f"/aws/lambda/{function}"


def secrets_parameter_name(stack: str, domain: str) -> str:
    """SSM parameter holding the site's secrets (``webhook_settings.secrets_value``)."""
    parts = (PROJECT, stack, domain, "secrets")
    return "/" + "/".join(part for part in parts if part)


def site_label(stack: str, domain: str) -> str:
    """How descriptions name the site: its domain, or its stack when it has no domain."""
    return domain or f"stack {stack}"


def site_tags(stack: str, domain: str) -> dict[str, str]:
    """The tags of every taggable resource; ``site`` is the domain, or the stack without one."""
    return {"project": PROJECT, "stack": stack, "site": domain or stack}


def alarm_topic_name(stack: str, domain: str) -> str:
    """The stack's own alarm topic (SNS names: at most 256 of A-Z a-z 0-9 - _)."""
    return _short_name(f"{_base(stack, domain)}-alarms", 256)


def alarm_name(stack: str, domain: str, purpose: str) -> str:
    """A CloudWatch alarm of this site, e.g. ``ncw-dev-lambda-example-com-dead-letters``.

    Named, not generated, so an operator reading a notification sees site and purpose at once.
    """
    return _short_name(f"{_base(stack, domain)}-{purpose}", 255)
