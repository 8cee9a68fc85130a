"""Section 6, verify: find the webhook's invalidation on every distribution and wait for it.

What is looked for, per distribution, best first:

1. the exact caller reference the ingest queued (its 202 answer lists one per distribution);
2. the newest invalidation of ``deploy_id``: every caller reference of a deploy starts with
   ``webhook_settings.reference_prefix(deploy_id)`` (the rest is a digest of the event, the
   deploy's ``published_at`` and ``updated_at`` and the paths, unknown to the runbook);
3. without a deploy, the newest invalidation the webhook made (references start ``netlify-``).

One deadline for all distributions, one line of progress; each distribution gets its own
status, wait and advice. When the trigger was refused, nothing can appear: no wait, no poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from function.webhook_settings import reference_prefix
from runbook_lib.aws import AwsClients, cloudfront_items, error_text, newest_invalidations
from runbook_lib.config import RunbookConfig
from runbook_lib.display import ProgressLine
from runbook_lib.notify import TriggerResult
from runbook_lib.verdict import FAIL, PASS, SKIPPED, WARN, Outcome, worst

WEBHOOK_PREFIX = "netlify-"  # every caller reference the webhook makes starts so
REFERENCE, DEPLOY_PREFIX, NEWEST = "reference", "deploy prefix", "newest webhook invalidation"
RESULT_COLUMNS = [
    "distribution",
    "invalidation",
    "status",
    "verdict",
    "matched by",
    "waited",
    "checks",
    "caller reference",
]


def is_completed(status: str | None) -> bool:
    """CloudFront says ``Completed``; moto says ``COMPLETED``."""
    return (status or "").strip().lower() == "completed"


@dataclass
class FoundInvalidation:
    distribution_id: str
    invalidation_id: str
    status: str
    caller_reference: str
    paths: tuple[str, ...]
    create_time: datetime | None
    matched_by: str  # REFERENCE, DEPLOY_PREFIX or NEWEST


def find_invalidation(
    cloudfront,
    distribution_id: str,
    reference: str | None = None,
    *,
    prefix: str | None = None,
    scan_limit: int = 100,
    seen: dict[str, str] | None = None,
) -> FoundInvalidation | None:
    """The invalidation whose CallerReference is ``reference``; without one, the newest whose
    reference starts with ``prefix``; among the ``scan_limit`` newest. Listing does not show
    references, so each candidate costs one ``GetInvalidation``, once: ``seen`` (id -> caller
    reference, which never changes) carries what earlier calls read."""
    seen = {} if seen is None else seen

    def wanted(ref: str) -> bool:
        return ref == reference if reference else bool(prefix) and ref.startswith(prefix or "")

    for summary in newest_invalidations(cloudfront, distribution_id, scan_limit):
        known = seen.get(summary["Id"])
        if known is not None and not wanted(known):
            continue
        item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=summary["Id"])
        invalidation = item["Invalidation"]
        batch = invalidation.get("InvalidationBatch", {})
        ref = batch.get("CallerReference", "")
        seen[invalidation["Id"]] = ref
        if wanted(ref):
            matched = (
                REFERENCE if reference else NEWEST if prefix == WEBHOOK_PREFIX else DEPLOY_PREFIX
            )
            return FoundInvalidation(
                distribution_id=distribution_id,
                invalidation_id=invalidation["Id"],
                status=invalidation.get("Status", ""),
                caller_reference=ref,
                paths=tuple(cloudfront_items(batch.get("Paths"))),
                create_time=invalidation.get("CreateTime"),
                matched_by=matched,
            )
    return None


@dataclass
class Target:
    """What to look for on one distribution."""

    distribution_id: str
    reference: str | None = None  # exact, from the ingest's answer
    prefix: str | None = None  # the deploy's, or WEBHOOK_PREFIX
    wait_to_appear: bool = True  # False: an existing invalidation is followed, none awaited


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
    paths: tuple[str, ...] = ()
    created: datetime | None = None
    guidance: str = ""
    skipped: str | None = None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.skipped:
            return SKIPPED
        if self.completed:
            return PASS
        if self.error:
            return WARN
        if self.found:  # still in progress when the wait ended
            return WARN
        return FAIL if self.matched_by != NEWEST else WARN

    def row(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution_id,
            "invalidation": self.invalidation_id or "-",
            "status": self.status or ("-" if self.found else "not found"),
            "verdict": self.verdict,
            "matched by": self.matched_by or "",
            "waited": f"{self.elapsed_s:.1f} s",
            "checks": self.polls,
            "caller reference": self.caller_reference or "",
        }

    def advice(self) -> str:
        """One line for this distribution: what happened and what to do."""
        if self.skipped:
            return f"`{self.distribution_id}`: SKIPPED, {self.skipped}"
        if self.error:
            return f"`{self.distribution_id}`: WARN, cannot check CloudFront: {self.error}"
        text = f"`{self.distribution_id}`: {self.verdict}, "
        if self.completed:
            text += f"invalidation `{self.invalidation_id}` is {self.status}"
        elif self.found:
            text += f"invalidation `{self.invalidation_id}` is still {self.status}"
        else:
            text += "no invalidation found"
        return text + (f". {self.guidance}" if self.guidance else ".")


def _timed_out_guidance(result: VerifyResult, timeout_s: float) -> str:
    if result.found:
        return (
            f"Stopped waiting after {timeout_s:.0f} s (`wait_timeout_s`). CloudFront usually "
            "completes within a minute to a few minutes; waits of 10+ minutes happen, and "
            "invalidations in progress queue behind each other. Re-run: the same invalidation "
            "is found again, nothing new is created."
        )
    return (
        f"Nothing appeared within {timeout_s:.0f} s. Check the answer in section 5 (anything but "
        "202 means nothing was queued), the queue and its dead letters in section 3 (the worker "
        "retries a busy CloudFront for up to two hours), then the ingest's and the worker's "
        "errors in section 9. A deploy notified long ago may be older than the invalidations "
        "scanned."
    )


def _poll(cloudfront, target: Target, result: VerifyResult, seen: dict, scan_limit: int) -> None:
    """One check of one distribution: look for the invalidation, or read its status."""
    result.polls += 1
    if result.found:
        current = cloudfront.get_invalidation(
            DistributionId=target.distribution_id, Id=result.invalidation_id
        )
        result.status = current["Invalidation"].get("Status")
        return
    found = find_invalidation(
        cloudfront,
        target.distribution_id,
        target.reference,
        prefix=target.prefix,
        scan_limit=scan_limit,
        seen=seen,
    )
    if found:
        result.found = True
        result.invalidation_id = found.invalidation_id
        result.status = found.status
        result.matched_by = found.matched_by
        result.caller_reference = found.caller_reference
        result.paths = found.paths
        result.created = found.create_time


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="completed",
        unit="distribution",
        file=ProgressLine() if enabled else None,
        disable=not enabled,
        bar_format="{desc} {n_fmt}/{total_fmt} distribution(s) |{bar:20}|",
        ascii=True,  # no block characters: readable in any font
    )


def wait_for_invalidations(
    cloudfront,
    targets: Iterable[Target],
    *,
    deploy_id: str | None = None,
    timeout_s: float = 300,
    poll_interval_s: float = 10,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
    scan_limit: int = 100,
) -> list[VerifyResult]:
    """Find each target's invalidation and wait until all are Completed or ``timeout_s``.

    One deadline, elapsed time read after each round of API calls, never a sleep past the
    deadline. ``clock`` and ``sleep`` are injectable so tests run the loop without waiting.
    """
    targets = list(targets)
    results = {
        t.distribution_id: VerifyResult(t.distribution_id, deploy_id, t.reference) for t in targets
    }
    for target in targets:  # what was looked for, until something is found
        if target.reference is None and target.prefix == WEBHOOK_PREFIX:
            results[target.distribution_id].matched_by = NEWEST
    seen: dict[str, dict[str, str]] = {t.distribution_id: {} for t in targets}
    pending = {t.distribution_id: t for t in targets}
    start = clock()
    deadline = start + timeout_s
    bar = _progress_bar(len(targets), progress)
    try:
        while pending:
            finished: list[str] = []
            for distribution_id, target in list(pending.items()):
                result = results[distribution_id]
                try:
                    _poll(cloudfront, target, result, seen[distribution_id], scan_limit)
                except Exception as error:  # credentials, permissions: a finding, not a crash
                    result.error = error_text(error)
                    finished.append(distribution_id)
                    continue
                if is_completed(result.status):
                    result.completed = True
                    finished.append(distribution_id)
                elif not result.found and not target.wait_to_appear:
                    finished.append(distribution_id)  # nothing to follow, nothing to await
            now = clock()
            for distribution_id in pending:
                results[distribution_id].elapsed_s = now - start
            for distribution_id in finished:
                del pending[distribution_id]
            bar.n = sum(1 for r in results.values() if r.completed)
            bar.set_description_str(f"waited {now - start:.0f} of {timeout_s:.0f} s, completed")
            if not pending:
                break
            if now >= deadline:
                for distribution_id in pending:
                    results[distribution_id].timed_out = True
                break
            sleep(min(poll_interval_s, deadline - now))
    finally:
        bar.close()
    for result in results.values():
        if result.timed_out:
            result.guidance = _timed_out_guidance(result, timeout_s)
        elif not result.found and not result.error and result.matched_by == NEWEST:
            result.guidance = (
                "The webhook has made no invalidation among the newest ones: no deploy since "
                "the stack exists, or notifications do not arrive (section 4's hooks, section "
                "10). Set `deploy_id`, or `send_test_notification = True`."
            )
    return [results[t.distribution_id] for t in targets]


@dataclass
class Verification:
    mode: str
    results: list[VerifyResult] = field(default_factory=list)
    skipped: str | None = None

    @property
    def verdict(self) -> str:
        if self.skipped or not self.results:
            return SKIPPED
        return worst(result.verdict for result in self.results)

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("verify", SKIPPED, [self.skipped])
        verdict = self.verdict
        if verdict == PASS:
            done = ", ".join(f"{r.distribution_id} {r.invalidation_id}" for r in self.results)
            return Outcome("verify", PASS, [f"Completed on every distribution ({done})"])
        return Outcome(
            "verify",
            verdict,
            [r.advice() for r in self.results if r.verdict == verdict],
        )

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
        lines = [f"**{self.verdict}** ({self.mode}), {len(self.results)} distribution(s):"]
        lines += [f"- {result.advice()}" for result in self.results]
        return "\n".join(lines)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([r.row() for r in self.results], columns=RESULT_COLUMNS)


def targets_for(config: RunbookConfig, trigger: TriggerResult) -> list[Target]:
    """Per distribution, what the trigger lets us look for (best first, see the module)."""
    references = trigger.references
    ids = list(references) if references else list(config.targets)
    if trigger.deploy_id:
        prefix = reference_prefix(trigger.deploy_id)
        return [Target(did, references.get(did), prefix) for did in ids]
    return [Target(did, None, WEBHOOK_PREFIX, wait_to_appear=False) for did in ids]


def verify(
    config: RunbookConfig,
    aws: AwsClients | None,
    trigger: TriggerResult,
    *,
    wait_timeout_s: float = 300,
    poll_interval_s: float = 10,
    **kwargs: Any,
) -> Verification:
    """Section 6: every distribution's invalidation for what the trigger did."""
    if not config.live or not config.targets:
        return Verification(trigger.mode, skipped=" ".join(config.missing()) or "no distribution")
    refused = trigger.refused or (trigger.skipped if trigger.mode == "test notification" else None)
    if refused:
        skipped = f"not waiting: {refused}"
        results = [
            VerifyResult(did, trigger.deploy_id, None, skipped=skipped) for did in config.targets
        ]
        return Verification(trigger.mode, results)
    aws = aws or AwsClients(config)
    results = wait_for_invalidations(
        aws.cloudfront,
        targets_for(config, trigger),
        deploy_id=trigger.deploy_id,
        timeout_s=wait_timeout_s,
        poll_interval_s=poll_interval_s,
        **kwargs,
    )
    return Verification(trigger.mode, results)
