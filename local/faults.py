"""Faults injected into the local AWS (moto, in this process), for tests, the bench and demos.

``cloudfront_refusing(code, when=...)``: while the block runs, moto's CloudFront answers
``CreateInvalidation`` with AWS's error ``code`` whenever ``when()`` is true. moto serializes
the error with the HTTP status CloudFront's API model gives that code (400 for
``TooManyInvalidationsInProgress``, 403 for ``AccessDenied``, 404 for ``NoSuchDistribution``),
so the worker meets the refusal as a real HTTP answer through its own boto3 client, exactly as
it would meet CloudFront's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Refusals:
    """What CloudFront refused and accepted while a fault was installed, in order."""

    refused: list[tuple[str, str]] = field(default_factory=list)  # (distribution, reference)
    accepted: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _add(self, bucket: list[tuple[str, str]], dist_id: str, reference: str) -> None:
        with self._lock:
            bucket.append((dist_id, reference))


@contextmanager
def cloudfront_refusing(
    code: str,
    *,
    when: Callable[[], bool] = lambda: True,
    message: str = "refused by the local stack's fault injection",
) -> Iterator[Refusals]:
    """Make ``CreateInvalidation`` fail with ``code`` while ``when()`` holds (see module doc)."""
    from moto.cloudfront.exceptions import CloudFrontException
    from moto.cloudfront.models import CloudFrontBackend

    original = CloudFrontBackend.create_invalidation
    log = Refusals()

    def create_invalidation(self: Any, dist_id: str, paths: list[str], caller_ref: str) -> Any:
        if when():
            log._add(log.refused, dist_id, caller_ref)
            raise CloudFrontException(code, message)
        invalidation = original(self, dist_id, paths, caller_ref)
        log._add(log.accepted, dist_id, caller_ref)
        return invalidation

    CloudFrontBackend.create_invalidation = create_invalidation
    try:
        yield log
    finally:
        CloudFrontBackend.create_invalidation = original
