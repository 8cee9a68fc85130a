"""Section 7, history and cost: recent invalidations, this month's paths and their price."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from runbook_lib.aws import (
    AwsClients,
    cloudfront_items,
    error_text,
    invalidation_pages,
    newest_invalidations,
)
from runbook_lib.config import RunbookConfig
from runbook_lib.display import skipped_or_failed
from runbook_lib.verdict import PASS, SKIPPED, WARN, Outcome

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


def _batch(cloudfront, distribution_id: str, invalidation_id: str, batches: dict) -> dict:
    """An invalidation's batch (paths, caller reference): it never changes, so it is read once
    (``batches``: id -> batch, shared by the table and the month's count)."""
    if invalidation_id not in batches:
        item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)
        batches[invalidation_id] = item["Invalidation"].get("InvalidationBatch", {})
    return batches[invalidation_id]


def _history_table(
    cloudfront, distribution_ids: Iterable[str], summaries_of, batches: dict | None
) -> pd.DataFrame:
    """One row per invalidation that ``summaries_of(distribution_id)`` lists, newest first:
    status and time from the listing, paths and caller reference from the (cached) batch."""
    batches = {} if batches is None else batches
    rows = []
    for distribution_id in distribution_ids:
        for summary in summaries_of(distribution_id):
            batch = _batch(cloudfront, distribution_id, summary["Id"], batches)
            paths = cloudfront_items(batch.get("Paths"))
            reference = batch.get("CallerReference", "")
            rows.append(
                {
                    "distribution_id": distribution_id,
                    "invalidation_id": summary["Id"],
                    "status": summary.get("Status"),
                    "created": pd.Timestamp(summary.get("CreateTime")).tz_convert("UTC"),
                    "path_count": len(paths),
                    "paths": ", ".join(paths[:5]) + (" …" if len(paths) > 5 else ""),
                    "caller_reference": reference,
                    "origin": _origin_of(reference),
                }
            )
    return _sorted_frame(rows)


def _sorted_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values("created", ascending=False, ignore_index=True)
    return frame


def invalidation_history(
    cloudfront, distribution_ids: Iterable[str], limit: int = 25, batches: dict | None = None
) -> pd.DataFrame:
    """The newest ``limit`` invalidations of each distribution, newest first."""
    return _history_table(
        cloudfront,
        distribution_ids,
        lambda distribution_id: newest_invalidations(cloudfront, distribution_id, limit),
        batches,
    )


def invalidations_since(cloudfront, distribution_id: str, since: datetime) -> list[dict]:
    """Every invalidation summary created at or after ``since``. ``ListInvalidations`` lists
    newest first, so paging stops after the first page that reaches back before ``since``."""
    found: list[dict] = []
    for items in invalidation_pages(cloudfront, distribution_id):
        found += [item for item in items if item["CreateTime"] >= since]
        if any(item["CreateTime"] < since for item in items):
            break
    return found


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def this_month_history(
    cloudfront,
    distribution_ids: Iterable[str],
    now: datetime | None = None,
    batches: dict | None = None,
) -> pd.DataFrame:
    """Every invalidation of these distributions created this month (UTC), however many: the
    month's paths and cost, not bounded by the table's ``limit``."""
    since = month_start(now or datetime.now(UTC))
    return _history_table(
        cloudfront,
        distribution_ids,
        lambda distribution_id: invalidations_since(cloudfront, distribution_id, since),
        batches,
    )


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
            f"{self.free_paths:,} free, so {self.billable_paths} billable: estimated "
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
    paths = sum(int(count) for count in this_month["path_count"])
    return MonthlyUsage(
        month=month,
        invalidations=len(this_month),
        paths=paths,
        free_paths=FREE_PATHS_PER_MONTH,
        billable_paths=max(0, paths - FREE_PATHS_PER_MONTH),
        estimated_cost_usd=paths_cost_usd(paths),
        note=(
            "The 1,000 free paths are per AWS account, shared by every distribution (and every "
            "site) in it, and this counts every invalidation of these distributions only: "
            "treat the figure as a lower bound. A wildcard such as `/*` counts as one path."
        ),
    )


def history_chart(history: pd.DataFrame, now: datetime | None = None, days: int = 30):
    """Invalidations per day (last ``days``), and paths per month as a share of the free 1,000
    on a log scale: a month with 1 path is a visible bar, not a line lost against 1,000."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    now = now or datetime.now(UTC)
    figure, (per_day, per_month) = plt.subplots(1, 2, figsize=(11, 3.6))
    if history.empty:
        for axis in (per_day, per_month):
            axis.text(0.5, 0.5, "no invalidations yet", ha="center", va="center")
            axis.set_axis_off()
        return figure
    created = pd.to_datetime(history["created"], utc=True)
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = pd.Timestamp(midnight - timedelta(days=days - 1))
    day_index = pd.date_range(start, periods=days, freq="D", tz="UTC")
    counts = created.dt.normalize().value_counts().reindex(day_index, fill_value=0)
    per_day.bar(counts.index.strftime("%m-%d"), counts.values, color="#2b7bb9")
    per_day.set_title(f"Invalidations per day (last {days} days)")
    per_day.set_ylabel("invalidations")
    per_day.tick_params(axis="x", labelrotation=90, labelsize=7)
    per_day.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.2 ticks
    months = history.assign(month=created.dt.strftime("%Y-%m")).groupby("month")["path_count"]
    monthly = pd.Series(months.sum()).sort_index()
    # Log scale from half a path: 1 path spans a third of a decade, 1,000 sits at 3.3 decades.
    top = max(FREE_PATHS_PER_MONTH * 3, float(monthly.max()) * 3)
    per_month.set_yscale("log")
    per_month.set_ylim(0.5, top)
    # Bars rise from the axis floor (0.5) to their value; a month without paths has none.
    heights = [float(v) - 0.5 if v > 0 else float("nan") for v in monthly.values]
    bars = per_month.bar(monthly.index, heights, bottom=0.5, width=0.5, color="#e07b39")
    share = [f"{int(v):,} ({v / FREE_PATHS_PER_MONTH:.1%})" for v in monthly.values]
    per_month.bar_label(bars, labels=share, padding=2, fontsize=8)
    per_month.axhline(FREE_PATHS_PER_MONTH, color="grey", linestyle="--", label="1,000 free paths")
    per_month.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    per_month.set_title("Paths per month, share of the free tier (log scale)")
    per_month.set_ylabel("paths (the free tier is per account)")
    per_month.legend(loc="upper left")
    figure.tight_layout()
    return figure


@dataclass
class HistoryResult:
    table: pd.DataFrame  # the newest ``limit`` per distribution (shown)
    usage: MonthlyUsage | None  # from ``month``: all of this month's invalidations
    skipped: str | None = None
    error: str | None = None
    month: pd.DataFrame | None = None

    @property
    def charted(self) -> pd.DataFrame:
        """The table and all of this month's invalidations, for ``history_chart``."""
        if self.month is None or self.month.empty:
            return self.table
        both = pd.concat([self.table, self.month], ignore_index=True)
        return _sorted_frame(both.drop_duplicates("invalidation_id").to_dict("records"))

    def markdown(self) -> str:
        stopped = skipped_or_failed(self.skipped, self.error, "Cannot list invalidations")
        if stopped:
            return stopped
        if self.table.empty:
            return "No invalidations on these distributions yet."
        return f"{len(self.table)} most recent invalidation(s), newest first."

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("history", SKIPPED, [self.skipped])
        if self.error or self.usage is None:
            return Outcome("history", WARN, [f"cannot list invalidations: {self.error}"])
        usage = self.usage
        text = (
            f"{usage.invalidations} invalidation(s) and {usage.paths} path(s) in {usage.month}, "
            f"estimated USD {usage.estimated_cost_usd:.2f}"
        )
        if usage.billable_paths:
            return Outcome("history", WARN, [f"{text}: past the {usage.free_paths:,} free paths"])
        return Outcome("history", PASS, [text])

    def contains(self, invalidation_id: str | None) -> bool:
        return bool(invalidation_id) and invalidation_id in set(self.table["invalidation_id"])


def history(config: RunbookConfig, aws: AwsClients | None, limit: int = 25) -> HistoryResult:
    if not config.live or not config.distribution_ids:
        empty = pd.DataFrame(columns=HISTORY_COLUMNS)
        return HistoryResult(empty, None, skipped=config.why_not_live())
    aws = aws or AwsClients(config)
    now = datetime.now(UTC)
    batches: dict[str, dict] = {}
    try:
        table = invalidation_history(aws.cloudfront, config.distribution_ids, limit, batches)
        month = this_month_history(aws.cloudfront, config.distribution_ids, now, batches)
    except Exception as error:  # a finding, not a crash
        empty = pd.DataFrame(columns=HISTORY_COLUMNS)
        return HistoryResult(empty, None, error=error_text(error))
    return HistoryResult(table, monthly_usage(month, now), month=month)
