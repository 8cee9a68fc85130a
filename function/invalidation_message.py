"""The queue's message: one CloudFront invalidation to make, written by the ingest (and the
reconciler), read by the worker. Standard library only.

The body is a JSON object with exactly ``MESSAGE_KEYS``. Everything copied from a request into
it is bounded (``bounded``), so a message stays far below SQS's 256 KiB limit: the paths come
from the function's settings (which fit in Lambda's 4 KB environment), never from the request.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from .webhook_settings import invalidation_path_problem

MESSAGE_KEYS = (
    "deploy_id",
    "site_id",
    "event",
    "context",
    "distribution_id",
    "paths",
    "caller_reference",
    "received_at",
)
# The string message attribute the worker gives a message it moves to the dead-letter queue:
# why it can never succeed. SQS's own redrive (retries exhausted) adds none.
ERROR_CODE_ATTRIBUTE = "error_code"
# A value copied from Netlify's request into a message or an answer keeps at most this many
# characters: Netlify's ids are 24 hex digits and its event and context names are short.
MAX_COPIED_CHARS = 128
# CloudFront's CallerReference: our references are "netlify-" + <= 64 + "-" + 16 characters.
_CALLER_REFERENCE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_DISTRIBUTION_ID = re.compile(r"[A-Za-z0-9]{1,64}")
MAX_PATHS = 3000


class MessageError(ValueError):
    """A body that is not an invalidation message; the text says what is wrong."""


def bounded(value: str | None, limit: int = MAX_COPIED_CHARS) -> str | None:
    """``value`` cut to ``limit`` characters (marked with "..."), None stays None."""
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 3] + "..."


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class InvalidationMessage:
    deploy_id: str
    site_id: str | None
    event: str | None
    context: str | None
    distribution_id: str
    paths: tuple[str, ...]
    caller_reference: str
    received_at: str

    def to_body(self) -> str:
        document = asdict(self)
        document["paths"] = list(self.paths)
        return json.dumps(document, separators=(",", ":"))


def new_message(
    *,
    deploy_id: str,
    site_id: str | None,
    event: str | None,
    context: str | None,
    distribution_id: str,
    paths: tuple[str, ...] | list[str],
    caller_reference: str,
    received_at: str | None = None,
) -> InvalidationMessage:
    """A message with its request-supplied values bounded and its paths normalized."""
    return InvalidationMessage(
        deploy_id=bounded(deploy_id) or "",
        site_id=bounded(site_id),
        event=bounded(event),
        context=bounded(context),
        distribution_id=distribution_id,
        paths=tuple(sorted(set(paths))),
        caller_reference=caller_reference,
        received_at=received_at or utc_now_iso(),
    )


def _optional_text(document: dict, key: str) -> str | None:
    value = document[key]
    if value is not None and not isinstance(value, str):
        raise MessageError(f"{key!r} must be a string or null")
    return value


def parse_message(body: object) -> InvalidationMessage:
    """The message in an SQS record's body; MessageError says what is wrong with it."""
    if not isinstance(body, str):
        raise MessageError("the body is not text")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise MessageError("the body is not JSON") from None
    if not isinstance(document, dict):
        raise MessageError("the body is not a JSON object")
    missing = [key for key in MESSAGE_KEYS if key not in document]
    extra = sorted(set(document) - set(MESSAGE_KEYS))
    if missing or extra:
        raise MessageError(f"keys missing: {missing}, keys not in the contract: {extra}")
    deploy_id = document["deploy_id"]
    if not isinstance(deploy_id, str) or not deploy_id:
        raise MessageError("'deploy_id' must be a non-empty string")
    distribution_id = document["distribution_id"]
    if not isinstance(distribution_id, str) or not _DISTRIBUTION_ID.fullmatch(distribution_id):
        raise MessageError("'distribution_id' is not a distribution id")
    reference = document["caller_reference"]
    if not isinstance(reference, str) or not _CALLER_REFERENCE.fullmatch(reference):
        raise MessageError("'caller_reference' is not a caller reference")
    received_at = document["received_at"]
    if not isinstance(received_at, str) or not received_at:
        raise MessageError("'received_at' must be an ISO 8601 time")
    paths = document["paths"]
    if not isinstance(paths, list) or not paths or len(paths) > MAX_PATHS:
        raise MessageError(f"'paths' must be a list of 1 to {MAX_PATHS} paths")
    for path in paths:
        if not isinstance(path, str):
            raise MessageError("'paths' must hold strings")
        problem = invalidation_path_problem(path)
        if problem:
            raise MessageError(problem)
    if len(set(paths)) != len(paths):
        raise MessageError("'paths' holds a path twice")
    return InvalidationMessage(
        deploy_id=deploy_id,
        site_id=_optional_text(document, "site_id"),
        event=_optional_text(document, "event"),
        context=_optional_text(document, "context"),
        distribution_id=distribution_id,
        paths=tuple(paths),
        caller_reference=reference,
        received_at=received_at,
    )
