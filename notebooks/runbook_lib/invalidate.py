"""Section 7, manual invalidation: paths validated exactly like the function's, dry run first."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from function import webhook_settings
from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig
from runbook_lib.history_cost import FREE_PATHS_PER_MONTH, PRICE_PER_PATH_USD, USD


def manual_reference(paths: Iterable[str], now: datetime | None = None) -> str:
    """A reference for an operator's invalidation: re-running the cell within the same minute
    reuses it (CloudFront returns the existing invalidation), a later run makes a new one."""
    now = now or datetime.now(UTC)
    digest = hashlib.sha256("\n".join(sorted(set(paths))).encode()).hexdigest()[:16]
    return f"runbook-manual-{now:%Y%m%dT%H%M}-{digest}"


@dataclass
class ManualInvalidation:
    distribution_id: str | None
    paths: tuple[str, ...]
    dry_run: bool
    problems: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None
    created: bool = False
    invalidation_id: str | None = None
    status: str | None = None
    error: str | None = None
    skipped: str | None = None

    @property
    def estimated_cost_note(self) -> str:
        return (
            f"{len(self.paths)} path(s) count against the account's {FREE_PATHS_PER_MONTH:,} free "
            f"paths this month, then {USD}{PRICE_PER_PATH_USD}/path."
        )

    def markdown(self) -> str:
        if self.skipped:
            return f"**Skipped:** {self.skipped}"
        if self.problems:
            return "❌ Not sent, fix the paths first:\n" + "\n".join(
                f"- {problem}" for problem in self.problems
            )
        if self.error:
            return f"❌ CloudFront refused: {self.error}"
        request = f"\n```json\n{json.dumps(self.request, indent=2)}\n```"
        if self.dry_run:
            return (
                "**Dry run** (`dry_run=True`): this request would be sent. "
                f"{self.estimated_cost_note} Set `dry_run = False` to send it.{request}"
            )
        return (
            f"✅ Created invalidation `{self.invalidation_id}` ({self.status}) on "
            f"`{self.distribution_id}`. {self.estimated_cost_note}{request}"
        )


def manual_invalidation(
    cloudfront,
    distribution_id: str,
    paths: Iterable[str],
    *,
    dry_run: bool = True,
    now: datetime | None = None,
) -> ManualInvalidation:
    """Invalidate ``paths`` validated exactly like the function's; with ``dry_run`` only show."""
    paths = tuple(paths or ())
    result = ManualInvalidation(distribution_id, paths, dry_run)
    if not paths:
        result.problems.append("no paths given (`manual_paths`)")
    elif len(paths) > webhook_settings.MAX_INVALIDATION_PATHS:
        result.problems.append(
            f"{len(paths)} paths; CloudFront takes at most "
            f"{webhook_settings.MAX_INVALIDATION_PATHS} in one invalidation"
        )
    result.problems += [
        problem for problem in map(webhook_settings.invalidation_path_problem, paths) if problem
    ]
    if result.problems:
        return result
    webhook_settings.validate_invalidation_paths(paths)  # the function's own rule, once more
    result.request = {
        "DistributionId": distribution_id,
        "InvalidationBatch": {
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": manual_reference(paths, now),
        },
    }
    if dry_run:
        return result
    try:
        answer = cloudfront.create_invalidation(**result.request)["Invalidation"]
    except Exception as error:
        result.error = error_text(error)
        return result
    result.created = True
    result.invalidation_id = answer["Id"]
    result.status = answer.get("Status")
    return result


def manual(
    config: RunbookConfig, aws: AwsClients | None, paths: Iterable[str], *, dry_run: bool = True
) -> ManualInvalidation:
    paths = tuple(paths or ())
    if not config.distribution_id:
        return ManualInvalidation(None, paths, dry_run, skipped=" ".join(config.missing()))
    if not config.live and not dry_run:
        return ManualInvalidation(
            config.distribution_id, paths, dry_run, skipped=" ".join(config.missing())
        )
    client = (aws or AwsClients(config)).cloudfront if config.live and not dry_run else None
    return manual_invalidation(client, config.distribution_id, paths, dry_run=dry_run)
