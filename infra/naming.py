"""Physical names and tags derived from the stack and the site's domain.

Names that other parts must know in advance are chosen here, not auto-generated: the Lambda
function (its log group is ``/aws/lambda/<function name>`` and is created before the function)
and the SSM parameter (the function reads its name from the environment).
"""

from __future__ import annotations

import hashlib
import re

from infra.settings import PROJECT

FUNCTION_NAME_PREFIX = "ncw"
_LAMBDA_NAME_MAX = 64
_NOT_LAMBDA_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def function_name(stack: str, domain: str) -> str:
    """``ncw-<stack>-<domain with dots as dashes>``; shortened with a hash when over 64."""
    name = _NOT_LAMBDA_NAME.sub("-", f"{FUNCTION_NAME_PREFIX}-{stack}-{domain}").strip("-")
    if len(name) <= _LAMBDA_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _LAMBDA_NAME_MAX - 9].rstrip('-')}-{digest}"


def log_group_name(function: str) -> str:
    """The log group Lambda writes to by default; created by the program with a retention."""
    return f"/aws/lambda/{function}"


def secrets_parameter_name(stack: str, domain: str) -> str:
    """SSM parameter holding ``{"token", "jws_secret"}`` for this site."""
    return f"/{PROJECT}/{stack}/{domain}/secrets"


def site_tags(stack: str, domain: str) -> dict[str, str]:
    return {"project": PROJECT, "stack": stack, "site": domain}
