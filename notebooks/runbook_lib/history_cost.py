"""Section 5, history and cost: recent invalidations, this month's paths and their price."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from runbook_lib.aws import AwsClients, cloudfront_items, error_text, newest_invalidations
from runbook_lib.config import RunbookConfig
from runbook_lib.display import skipped_or_failed

FREE_PATHS_PER_MONTH = 1000  # per AWS account, all distributions together
PRICE_PER_PATH_USD = 0.005
USD = "\\$"  # escaped: a bare $ pair would turn notebook markdown into MathJax

HISTORY_COLUMNS = [
    "distribution_id",
    "invalidation_id",
    "status",
    "created",
    "path_count",
    "paths",
    "caller_reference",
    "origin",
]


def _origin_of(reference: str) -> str:
    if reference.startswith("netlify-"):
        return "netlify deploy"
    if reference.startswith("runbook-"):
        return "runbook (manual)"
    return "other"


def invalidation_history(
    cloudfront, distribution_ids: Iterable[str], limit: int = 25
) -> pd.DataFrame:
    """The newest ``limit`` invalidations of each distribution, newest first."""
    rows = []
    for distribution_id in distribution_ids:
        for summary in newest_invalidations(cloudfront, distribution_id, limit):
            item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=summary["Id"])
            invalidation = item["Invalidation"]
            batch = invalidation.get("InvalidationBatch", {})
            paths = cloudfront_items(batch.get("Paths"))
            reference = batch.get("CallerReference", "")
            rows.append(
                {
                    "distribution_id": distribution_id,
                    "invalidation_id": invalidation["Id"],
                    "status": invalidation.get("Status"),
                    "created": pd.Timestamp(invalidation.get("CreateTime")).tz_convert("UTC"),
                    "path_count": len(paths),
                    "paths": ", ".join(paths[:5]) + (" …" if len(paths) > 5 else ""),
                    "caller_reference": reference,
                    "origin": _origin_of(reference),
                }
            )
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values("created", ascending=False, ignore_index=True)
    return frame


def paths_cost_usd(paths: int, free_paths: int = FREE_PATHS_PER_MONTH) -> float:
    """CloudFront's price for ``paths`` invalidation paths in one month (``/*`` is one path)."""
    return round(max(0, paths - free_paths) * PRICE_PER_PATH_USD, 4)


@dataclass
class MonthlyUsage:
    month: str
    invalidations: int
    paths: int
    free_paths: int
    billable_paths: int
    estimated_cost_usd: float
    note: str

    def markdown(self) -> str:
        return (
            f"**{self.month}:** {self.invalidations} invalidations, {self.paths} paths of the "
            f"{self.free_paths:,} free → {self.billable_paths} billable, estimated "
            f"**{USD}{self.estimated_cost_usd:.2f}** (at {USD}{PRICE_PER_PATH_USD}/path).\n\n"
            f"{self.note}"
        )


def monthly_usage(history: pd.DataFrame, now: datetime | None = None) -> MonthlyUsage:
    """This month's paths and the estimated cost, from the history table."""
    now = now or datetime.now(UTC)
    month = now.strftime("%Y-%m")
    if history.empty:
        this_month = history
    else:
        created = pd.to_datetime(history["created"], utc=True)
        this_month = history[created.dt.strftime("%Y-%m") == month]
    paths = int(this_month["path_count"].sum()) if not this_month.empty else 0
    return MonthlyUsage(
        month=month,
        invalidations=len(this_month),
        paths=paths,
        free_paths=FREE_PATHS_PER_MONTH,
        billable_paths=max(0, paths - FREE_PATHS_PER_MONTH),
        estimated_cost_usd=paths_cost_usd(paths),
        note=(
            "The 1,000 free paths are per AWS account, shared by every distribution (and every "
            "site) in it, and this table only holds the newest invalidations of these "
            "distributions: treat the figure as a lower bound. A wildcard such as `/*` counts as "
            "one path."
        ),
    )


def history_chart(history: pd.DataFrame, now: datetime | None = None, days: int = 30):
    """Invalidations per day (last ``days``) and paths per month against the free 1,000."""
    import matplotlib.pyplot as plt

    now = now or datetime.now(UTC)
    figure, (per_day, per_month) = plt.subplots(1, 2, figsize=(11, 3.5))
    if history.empty:
        for axis in (per_day, per_month):
            axis.text(0.5, 0.5, "no invalidations yet", ha="center", va="center")
            axis.set_axis_off()
        return figure
    created = pd.to_datetime(history["created"], utc=True)
    start = (pd.Timestamp(now).tz_convert("UTC") - pd.Timedelta(days=days - 1)).normalize()
    day_index = pd.date_range(start, periods=days, freq="D", tz="UTC")
    counts = created.dt.normalize().value_counts().reindex(day_index, fill_value=0)
    per_day.bar(counts.index.strftime("%m-%d"), counts.values, color="#2b7bb9")
    per_day.set_title(f"Invalidations per day (last {days} days)")
    per_day.set_ylabel("invalidations")
    per_day.tick_params(axis="x", labelrotation=90, labelsize=7)
    months = history.assign(month=created.dt.strftime("%Y-%m")).groupby("month")["path_count"]
    monthly = months.sum().sort_index()
    per_month.bar(monthly.index, monthly.values, color="#e07b39")
    per_month.axhline(FREE_PATHS_PER_MONTH, color="grey", linestyle="--", label="1,000 free paths")
    per_month.set_title("Paths per month (free tier is per account)")
    per_month.set_ylabel("paths")
    per_month.legend(loc="upper left")
    figure.tight_layout()
    return figure


@dataclass
class HistoryResult:
    table: pd.DataFrame
    usage: MonthlyUsage | None
    skipped: str | None = None
    error: str | None = None

    def markdown(self) -> str:
        stopped = skipped_or_failed(self.skipped, self.error, "Cannot list invalidations")
        if stopped:
            return stopped
        if self.table.empty:
            return "No invalidations on these distributions yet."
        return f"{len(self.table)} most recent invalidation(s), newest first."

    def contains(self, invalidation_id: str | None) -> bool:
        return bool(invalidation_id) and invalidation_id in set(self.table["invalidation_id"])


def history(config: RunbookConfig, aws: AwsClients | None, limit: int = 25) -> HistoryResult:
    if not config.live or not config.distribution_ids:
        empty = pd.DataFrame(columns=HISTORY_COLUMNS)
        return HistoryResult(empty, None, skipped=" ".join(config.missing()))
    aws = aws or AwsClients(config)
    try:
        table = invalidation_history(aws.cloudfront, config.distribution_ids, limit)
    except Exception as error:  # a finding, not a crash
        empty = pd.DataFrame(columns=HISTORY_COLUMNS)
        return HistoryResult(empty, None, error=error_text(error))
    return HistoryResult(table, monthly_usage(table))
