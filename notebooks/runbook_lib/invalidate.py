"""Section 8, manual invalidation: paths checked and normalized exactly like the function's.

Off by default: with ``invalidate_paths = False`` the section only shows the request it would
send. The paths are normalized as the function normalizes a batch (blanks dropped, repeats
removed, sorted: ``sorted(set(paths))``, as ``function.handler.invalidation_paths`` and the
queue message do) and checked with its rule (``webhook_settings.invalidation_path_problem``),
then sent to every distribution acted on (all, or ``distribution_id``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from function import webhook_settings
from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig, as_list
from runbook_lib.history_cost import FREE_PATHS_PER_MONTH, PRICE_PER_PATH_USD, USD
from runbook_lib.path_health import WILDCARD_PATHS_IN_PROGRESS, is_wildcard
from runbook_lib.verdict import FAIL, PASS, SKIPPED, Outcome


def manual_reference(paths: Iterable[str], now: datetime | None = None) -> str:
    """A reference for an operator's invalidation: re-running the cell within the same minute
    reuses it (CloudFront returns the existing invalidation), a later run makes a new one."""
    now = now or datetime.now(UTC)
    digest = hashlib.sha256("\n".join(sorted(set(paths))).encode()).hexdigest()[:16]
    return f"runbook-manual-{now:%Y%m%dT%H%M}-{digest}"


def normalized_paths(paths: Any) -> tuple[str, ...]:
    """The paths as the function batches them: a list or one comma-separated string, blanks
    dropped, each path once, sorted."""
    return tuple(sorted(set(as_list(paths))))


def path_problems(paths: tuple[str, ...]) -> list[str]:
    """Why CloudFront would refuse this batch (the function's rules), or []."""
    if not paths:
        return ["No paths given (`manual_paths`)."]
    problems = []
    if len(paths) > webhook_settings.MAX_INVALIDATION_PATHS:
        problems.append(
            f"{len(paths)} paths; CloudFront takes at most "
            f"{webhook_settings.MAX_INVALIDATION_PATHS} in one invalidation."
        )
    wildcards = sum(1 for path in paths if is_wildcard(path))
    if wildcards > WILDCARD_PATHS_IN_PROGRESS:
        problems.append(
            f"{wildcards} wildcard paths; CloudFront allows {WILDCARD_PATHS_IN_PROGRESS} in "
            "progress per distribution."
        )
    problems += [
        problem + "."
        for problem in map(webhook_settings.invalidation_path_problem, paths)
        if problem
    ]
    return problems


@dataclass
class Sent:
    distribution_id: str
    invalidation_id: str | None = None
    status: str | None = None
    error: str | None = None


@dataclass
class ManualInvalidation:
    distribution_ids: tuple[str, ...]
    paths: tuple[str, ...]
    enabled: bool
    given: int = 0  # how many paths the operator gave, before normalizing
    problems: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None
    sent: list[Sent] = field(default_factory=list)
    skipped: str | None = None

    @property
    def created(self) -> bool:
        return bool(self.sent) and all(item.invalidation_id for item in self.sent)

    @property
    def invalidation_ids(self) -> list[str]:
        return [item.invalidation_id for item in self.sent if item.invalidation_id]

    @property
    def estimated_cost_note(self) -> str:
        count = len(self.paths) * max(1, len(self.distribution_ids))
        return (
            f"{count} path(s) count against the account's {FREE_PATHS_PER_MONTH:,} free paths "
            f"this month, then {USD}{PRICE_PER_PATH_USD}/path."
        )

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("manual invalidation", SKIPPED, [self.skipped])
        if not self.enabled:
            return Outcome(
                "manual invalidation", SKIPPED, ["switched off (`invalidate_paths = False`)"]
            )
        if self.problems:
            return Outcome("manual invalidation", FAIL, ["not sent: " + " ".join(self.problems)])
        failed = [f"{item.distribution_id}: {item.error}" for item in self.sent if item.error]
        if failed:
            return Outcome("manual invalidation", FAIL, failed)
        made = ", ".join(f"{item.distribution_id} {item.invalidation_id}" for item in self.sent)
        return Outcome("manual invalidation", PASS, [f"created {made}"])

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
        merged = (
            f" ({self.given} given, {self.given - len(self.paths)} repeat(s) dropped)"
            if self.given != len(self.paths)
            else ""
        )
        head = f"Paths, normalized as the function does{merged}: " + ", ".join(
            f"`{path}`" for path in self.paths
        )
        if self.problems:
            return f"{head}\n\n**FAIL:** not sent, fix the paths first:\n" + "\n".join(
                f"- {problem}" for problem in self.problems
            )
        request = f"\n```json\n{json.dumps(self.request, indent=2)}\n```"
        if not self.enabled:
            return (
                f"{head}\n\n**SKIPPED** (`invalidate_paths = False`): this request would be sent "
                f"to {', '.join(self.distribution_ids)}. {self.estimated_cost_note} Set "
                f"`invalidate_paths = True` to send it.{request}"
            )
        lines = [head, ""]
        for item in self.sent:
            if item.error:
                lines.append(
                    f"- `{item.distribution_id}`: **FAIL**, CloudFront refused: {item.error}"
                )
            else:
                lines.append(
                    f"- `{item.distribution_id}`: **PASS**, created `{item.invalidation_id}` "
                    f"({item.status})"
                )
        return "\n".join(lines) + f"\n\n{self.estimated_cost_note}{request}"


def manual_invalidation(
    cloudfront,
    distribution_ids: Iterable[str],
    paths: Any,
    *,
    enabled: bool = False,
    now: datetime | None = None,
) -> ManualInvalidation:
    """Invalidate ``paths`` (normalized and checked like the function's) on each distribution;
    without ``enabled`` only show the request."""
    given = as_list(paths)
    batch = normalized_paths(given)
    result = ManualInvalidation(tuple(distribution_ids), batch, enabled, given=len(given))
    result.problems = path_problems(batch)
    if result.problems:
        return result
    webhook_settings.validate_invalidation_paths(batch)  # the function's own rule, once more
    result.request = {
        "DistributionId": "<each distribution>"
        if len(result.distribution_ids) > 1
        else (result.distribution_ids[0] if result.distribution_ids else None),
        "InvalidationBatch": {
            "Paths": {"Quantity": len(batch), "Items": list(batch)},
            "CallerReference": manual_reference(batch, now),
        },
    }
    if not enabled:
        return result
    for distribution_id in result.distribution_ids:
        item = Sent(distribution_id)
        try:
            answer = cloudfront.create_invalidation(
                DistributionId=distribution_id,
                InvalidationBatch=result.request["InvalidationBatch"],
            )["Invalidation"]
        except Exception as error:
            item.error = error_text(error)
        else:
            item.invalidation_id, item.status = answer["Id"], answer.get("Status")
        result.sent.append(item)
    return result


def manual(
    config: RunbookConfig, aws: AwsClients | None, paths: Any, *, enabled: bool = False
) -> ManualInvalidation:
    """Section 8. Sends only with ``enabled`` (the ``invalidate_paths`` parameter)."""
    if not config.targets:
        return ManualInvalidation(
            (), normalized_paths(paths), enabled, skipped=config.why_not_live()
        )
    if enabled and not config.live:
        return ManualInvalidation(
            config.targets, normalized_paths(paths), enabled, skipped=config.why_not_live()
        )
    client = (aws or AwsClients(config)).cloudfront if enabled else None
    return manual_invalidation(client, config.targets, paths, enabled=enabled)
