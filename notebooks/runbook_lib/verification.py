"""Section 5, verify: find the function's invalidation by its caller reference and wait for it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from function.webhook_settings import caller_reference
from runbook_lib.aws import AwsClients, cloudfront_items, error_text, newest_invalidations
from runbook_lib.config import RunbookConfig
from runbook_lib.display import skipped_or_failed


def is_completed(status: str | None) -> bool:
    """CloudFront says ``Completed``; moto says ``COMPLETED``."""
    return (status or "").strip().lower() == "completed"


def reference_prefix(deploy_id: str) -> str:
    """The part of every caller reference for ``deploy_id`` that does not depend on paths."""
    return caller_reference(deploy_id, ["/"]).rsplit("-", 1)[0] + "-"


@dataclass
class FoundInvalidation:
    distribution_id: str
    invalidation_id: str
    status: str
    caller_reference: str
    paths: tuple[str, ...]
    create_time: datetime | None
    matched_by: str  # "reference" or "deploy prefix"


def find_invalidation(
    cloudfront,
    distribution_id: str,
    reference: str,
    *,
    prefix: str | None = None,
    scan_limit: int = 100,
    seen: dict[str, str] | None = None,
) -> FoundInvalidation | None:
    """The invalidation whose CallerReference is ``reference`` (or, failing that, starts with
    ``prefix``: same deploy, other paths), among the ``scan_limit`` newest. Listing does not
    show references, so each candidate costs one ``GetInvalidation``, once: ``seen`` (id ->
    caller reference, which never changes) carries what earlier calls read."""
    seen = {} if seen is None else seen
    fallback: FoundInvalidation | None = None
    for summary in newest_invalidations(cloudfront, distribution_id, scan_limit):
        known = seen.get(summary["Id"])
        if known is not None and known != reference and not (prefix and known.startswith(prefix)):
            continue
        item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=summary["Id"])
        invalidation = item["Invalidation"]
        batch = invalidation.get("InvalidationBatch", {})
        ref = batch.get("CallerReference", "")
        seen[invalidation["Id"]] = ref
        candidate = FoundInvalidation(
            distribution_id=distribution_id,
            invalidation_id=invalidation["Id"],
            status=invalidation.get("Status", ""),
            caller_reference=ref,
            paths=tuple(cloudfront_items(batch.get("Paths"))),
            create_time=invalidation.get("CreateTime"),
            matched_by="reference",
        )
        if ref == reference:
            return candidate
        if prefix and fallback is None and ref.startswith(prefix):
            candidate.matched_by = "deploy prefix"
            fallback = candidate
    return fallback


@dataclass
class VerifyResult:
    distribution_id: str | None
    deploy_id: str | None
    caller_reference: str | None
    found: bool = False
    invalidation_id: str | None = None
    status: str | None = None
    completed: bool = False
    timed_out: bool = False
    elapsed_s: float = 0.0
    polls: int = 0
    matched_by: str | None = None
    guidance: str = ""
    skipped: str | None = None
    error: str | None = None

    def markdown(self) -> str:
        stopped = skipped_or_failed(self.skipped, self.error, "Cannot check CloudFront")
        if stopped:
            return stopped
        if self.completed:
            head = (
                f"✅ Invalidation `{self.invalidation_id}` on `{self.distribution_id}` is "
                f"**{self.status}** after {self.elapsed_s:.1f} s ({self.polls} check(s))."
            )
        elif self.found:
            head = (
                f"⏳ Invalidation `{self.invalidation_id}` on `{self.distribution_id}` is still "
                f"**{self.status}** after {self.elapsed_s:.1f} s."
            )
        else:
            head = (
                f"❌ No invalidation for deploy `{self.deploy_id}` on `{self.distribution_id}` "
                f"after {self.elapsed_s:.1f} s."
            )
        lines = [head, f"- caller reference: `{self.caller_reference}`"]
        if self.matched_by == "deploy prefix":
            lines.append(
                "- matched by deploy id only: the function invalidated other paths than the "
                "runbook expects (set NCW_INVALIDATION_PATHS to the stack's invalidationPaths)"
            )
        if self.guidance:
            lines.append(f"\n{self.guidance}")
        return "\n".join(lines)


def _progress_bar(total: float, description: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="s",
        file=sys.stdout,
        disable=not enabled,
        bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [elapsed {elapsed}]",
    )


def wait_for_invalidation(
    cloudfront,
    distribution_id: str,
    deploy_id: str,
    paths: Iterable[str],
    *,
    timeout_s: float = 300,
    poll_interval_s: float = 10,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
    scan_limit: int = 100,
) -> VerifyResult:
    """Find the function's invalidation for ``deploy_id`` and wait until it is Completed.

    Stops at ``timeout_s`` with guidance instead of hanging: one deadline, elapsed time read
    after each round of API calls, never a sleep past the deadline. ``clock`` and ``sleep`` are
    injectable so tests run the loop without real waiting.
    """
    reference = caller_reference(deploy_id, tuple(paths))
    prefix = reference_prefix(deploy_id)
    result = VerifyResult(distribution_id, deploy_id, reference)
    seen: dict[str, str] = {}  # invalidation id -> caller reference, read once each
    start = clock()
    deadline = start + timeout_s
    bar = _progress_bar(timeout_s, f"{distribution_id}", progress)
    try:
        while True:
            result.polls += 1
            if not result.found:
                found = find_invalidation(
                    cloudfront,
                    distribution_id,
                    reference,
                    prefix=prefix,
                    scan_limit=scan_limit,
                    seen=seen,
                )
                if found:
                    result.found = True
                    result.invalidation_id = found.invalidation_id
                    result.status = found.status
                    result.matched_by = found.matched_by
                    result.caller_reference = found.caller_reference
            else:
                current = cloudfront.get_invalidation(
                    DistributionId=distribution_id, Id=result.invalidation_id
                )
                result.status = current["Invalidation"].get("Status")
            now = clock()
            result.elapsed_s = now - start
            bar.n = min(result.elapsed_s, timeout_s)
            bar.set_description_str(f"{distribution_id} {result.status or 'looking for it'}")
            if is_completed(result.status):
                result.completed = True
                bar.n = timeout_s  # a full bar: done
                bar.refresh()
                break
            if now >= deadline:
                result.timed_out = True
                break
            sleep(min(poll_interval_s, deadline - now))
    finally:
        bar.close()

    if result.timed_out and result.found:
        result.guidance = (
            f"Stopped waiting after {timeout_s:.0f} s (`wait_timeout_s`). CloudFront usually "
            "completes within a minute to a few minutes; waits of 10+ minutes happen, and many "
            "invalidations in progress queue behind each other. Re-run this cell: it finds the "
            "same invalidation again by its caller reference, nothing new is created."
        )
    elif result.timed_out:
        result.guidance = (
            f"Nothing with this reference appeared within {timeout_s:.0f} s. Check the answer in "
            "section 4 (anything but 202 means nothing was queued), the queue and its dead "
            "letters in section 3 (the worker retries a busy CloudFront for up to two hours), "
            "then the ingest's and the worker's errors in section 8. If the notification was "
            "sent long ago, the invalidation may be older than the newest invalidations scanned."
        )
    return result


def verify(
    config: RunbookConfig,
    aws: AwsClients | None,
    deploy_id: str | None,
    *,
    wait_timeout_s: float = 300,
    poll_interval_s: float = 10,
    **kwargs: Any,
) -> VerifyResult:
    if not config.live or not config.distribution_id:
        return VerifyResult(
            config.distribution_id,
            deploy_id,
            None,
            skipped=" ".join(config.missing()) or "no distribution",
        )
    if not deploy_id:
        return VerifyResult(
            config.distribution_id,
            None,
            None,
            skipped="no deploy to look for: the trigger did not send a notification "
            "(pass `deploy_id` to verify a real Netlify deploy).",
        )
    aws = aws or AwsClients(config)
    try:
        return wait_for_invalidation(
            aws.cloudfront,
            config.distribution_id,
            deploy_id,
            config.invalidation_paths,
            timeout_s=wait_timeout_s,
            poll_interval_s=poll_interval_s,
            **kwargs,
        )
    except Exception as error:  # credentials, permissions, endpoint: a finding, not a crash
        reference = caller_reference(deploy_id, config.invalidation_paths)
        return VerifyResult(config.distribution_id, deploy_id, reference, error=error_text(error))
