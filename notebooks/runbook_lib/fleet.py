"""The fleet view: every site stack in one table, and the account's paths and cost this month.

Where the stacks come from: ``NCW_FLEET_FILE`` (the local stack's JSON, {stack: {NCW_* variable:
value}}) when set; else the Pulumi CLI (``pulumi stack ls --json``, then each stack's ``pulumi
stack output --json --show-secrets``; ``NCW_NO_PULUMI=1`` disables it); the ``stacks``
parameter narrows either, or names the stacks when neither answers. Each stack is read with the
site runbook's own functions (``runbook_lib.config.load_config`` and the section modules), and
nothing is changed: no test notification, no invalidation, the dead letters not even peeked at.

The free 1,000 paths a month are per AWS account, shared by every distribution of every site in
it: the account table counts each distribution once, even when two stacks configure it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from runbook_lib.aws import AwsClients, error_text, newest_invalidations
from runbook_lib.config import (
    NO_PULUMI,
    REPO_ROOT,
    RunbookConfig,
    as_list,
    list_stacks,
    load_config,
    read_fleet_file,
)
from runbook_lib.history_cost import (
    FREE_PATHS_PER_MONTH,
    month_start,
    paths_cost_usd,
    this_month_history,
)
from runbook_lib.pipeline import ALARM_STATE, age_text, alarm_states, queue_depth, queue_name
from runbook_lib.reconciler import RUN_KEYS, reconciler_status
from runbook_lib.verdict import FAIL, PASS, SKIPPED, WARN, Outcome, Verdict, overall, worst

# An invalidation still in progress after this long is worth a look (they usually take minutes).
STUCK_INVALIDATION_S = 3600
STACK_COLUMNS = [
    "stack",
    "verdict",
    "endpoint",
    "distributions",
    "last invalidation",
    "status",
    "age",
    "queued",
    "dead letters",
    "alarms",
    "reconciler",
    "paths this month",
    "why",
]
ACCOUNT_COLUMNS = [
    "account",
    "stacks",
    "distributions",
    "invalidations",
    "paths this month",
    "share of the free 1,000",
    "estimated cost (USD)",
]


@dataclass
class StackRow:
    stack: str
    config: RunbookConfig | None = None
    account: str | None = None
    last_invalidation: str | None = None
    last_distribution: str | None = None
    last_status: str | None = None
    last_age_s: float | None = None
    queued: int | None = None
    dead_letters: int | None = None
    alarms_total: int | None = None
    alarms_firing: list[str] = field(default_factory=list)
    reconciler: str = "-"
    month: pd.DataFrame | None = None  # this month's invalidations of its distributions
    problems: list[str] = field(default_factory=list)  # FAIL
    warnings: list[str] = field(default_factory=list)  # WARN
    skipped: str | None = None

    @property
    def verdict(self) -> str:
        if self.skipped:
            return SKIPPED
        if self.problems:
            return FAIL
        return WARN if self.warnings else PASS

    @property
    def paths_this_month(self) -> int:
        if self.month is None or self.month.empty:
            return 0
        return sum(int(count) for count in self.month["path_count"])

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome(f"stack {self.stack}", SKIPPED, [self.skipped])
        reasons = self.problems if self.problems else self.warnings
        return Outcome(f"stack {self.stack}", self.verdict, reasons or ["flowing"])

    def row(self) -> dict[str, Any]:
        config = self.config
        alarms = (
            "-"
            if self.alarms_total is None
            # The word ALARM is coloured as a failure: say it only when one is firing.
            else f"{len(self.alarms_firing)} of {self.alarms_total} in ALARM: "
            + ", ".join(self.alarms_firing)
            if self.alarms_firing
            else f"none of {self.alarms_total} firing"
        )
        return {
            "stack": self.stack,
            "verdict": self.verdict,
            "endpoint": config.endpoint if config else "-",
            "distributions": ", ".join(config.distribution_ids) if config else "-",
            "last invalidation": (
                f"{self.last_invalidation} on {self.last_distribution}"
                if self.last_invalidation
                else "-"
            ),
            "status": self.last_status or "-",
            "age": age_text(self.last_age_s),
            "queued": "-" if self.queued is None else self.queued,
            "dead letters": "-" if self.dead_letters is None else self.dead_letters,
            "alarms": alarms,
            "reconciler": self.reconciler,
            "paths this month": self.paths_this_month if self.month is not None else "-",
            "why": "; ".join(self.problems + self.warnings) or (self.skipped or ""),
        }


def _last_invalidation(aws: AwsClients, row: StackRow, now: datetime) -> None:
    """The newest invalidation over the stack's distributions: id, status, age."""
    assert row.config is not None
    newest: tuple[datetime, str, dict[str, Any]] | None = None
    for distribution_id in row.config.distribution_ids:
        for item in newest_invalidations(aws.cloudfront, distribution_id, 1):
            created = item.get("CreateTime")
            if isinstance(created, datetime) and (newest is None or created > newest[0]):
                newest = (created, distribution_id, item)
    if newest is None:
        return
    created, distribution_id, item = newest
    row.last_invalidation, row.last_distribution = item["Id"], distribution_id
    row.last_status = item.get("Status")
    row.last_age_s = (now - created.astimezone(UTC)).total_seconds()
    if (row.last_status or "").lower() == "inprogress" and row.last_age_s > STUCK_INVALIDATION_S:
        row.warnings.append(
            f"invalidation {item['Id']} on {distribution_id} is in progress for "
            f"{age_text(row.last_age_s)}"
        )


def _queues(aws: AwsClients, row: StackRow) -> None:
    assert row.config is not None
    config = row.config
    if config.queue_url:
        depth = queue_depth(aws.sqs, None, config.queue_url)
        if depth.error:
            row.warnings.append(depth.error)
        else:
            row.queued = depth.total
    if config.dead_letter_queue_url:
        dead = queue_depth(aws.sqs, None, config.dead_letter_queue_url, "dead-letter queue")
        if dead.error:
            row.warnings.append(dead.error)
        else:
            row.dead_letters = dead.total
            if dead.total:
                row.problems.append(
                    f"{dead.total} dead letter(s): invalidations that did not happen"
                )
    if not config.queue_url and not config.dead_letter_queue_url:
        row.warnings.append("no queue known (a stack deployed before the pipeline?)")


def _alarms(aws: AwsClients, row: StackRow) -> None:
    assert row.config is not None
    config = row.config
    names = [queue_name(url) for url in (config.queue_url, config.dead_letter_queue_url) if url]
    names += [
        name
        for name in (
            config.function_name,
            config.worker_function_name,
            config.reconciler_function_name,
            config.stack,
        )
        if name
    ]
    found = alarm_states(
        aws.cloudwatch,
        topic_arn=config.alarm_topic_arn,
        resource_names=names,
        name_prefix=config.function_name,
    )
    if found.error or found.skipped:
        row.warnings.append(found.error or f"alarms not read: {found.skipped}")
        return
    row.alarms_total = len(found.table)
    row.alarms_firing = found.in_alarm
    if found.in_alarm:
        row.problems.append(f"alarm(s) in {ALARM_STATE}: {', '.join(found.in_alarm)}")


def _reconciler(aws: AwsClients, row: StackRow, window_hours: float, now: datetime) -> None:
    assert row.config is not None
    status = reconciler_status(row.config, aws, window_hours=window_hours, now=now)
    outcome = status.outcome()
    if status.skipped:
        row.reconciler = "none"
        return
    last = status.last_run
    if last is None:
        row.reconciler = f"no run in {window_hours:g} h"
    else:
        counts = ", ".join(f"{key.replace('_', ' ')} {last.count(key)}" for key in RUN_KEYS)
        row.reconciler = f"{age_text((now - last.time).total_seconds())} ago: {counts}"
    if outcome.verdict == WARN:
        row.warnings += [f"reconciler: {reason}" for reason in outcome.reasons]


def stack_row(
    config: RunbookConfig,
    *,
    window_hours: float = 24,
    now: datetime | None = None,
    aws: AwsClients | None = None,
) -> StackRow:
    """One stack's line of the fleet table, read-only."""
    now = now or datetime.now(UTC)
    row = StackRow(config.stack, config)
    if not config.live:
        row.skipped = config.why_not_live()
        return row
    aws = aws or AwsClients(config)
    try:
        row.account = aws.sts.get_caller_identity().get("Account")
    except Exception as error:
        row.warnings.append(f"cannot identify the AWS account: {error_text(error)}")
    if row.account and config.stack_account and row.account != config.stack_account:
        row.problems.append(
            f"the credentials are for account {row.account}, the stack is in {config.stack_account}"
        )
        return row
    for part in (
        lambda: _last_invalidation(aws, row, now),
        lambda: _queues(aws, row),
        lambda: _alarms(aws, row),
        lambda: _reconciler(aws, row, window_hours, now),
    ):
        try:
            part()
        except Exception as error:  # one unreadable part must not hide the others
            row.warnings.append(error_text(error))
    try:
        row.month = this_month_history(aws.cloudfront, config.distribution_ids, now)
    except Exception as error:
        row.warnings.append(f"cannot count this month's paths: {error_text(error)}")
    return row


@dataclass
class AccountUsage:
    account: str
    stacks: list[str]
    distributions: list[str]
    invalidations: int
    paths: int

    def row(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "stacks": ", ".join(self.stacks),
            "distributions": ", ".join(self.distributions),
            "invalidations": self.invalidations,
            "paths this month": self.paths,
            "share of the free 1,000": f"{self.paths / FREE_PATHS_PER_MONTH:.1%}",
            "estimated cost (USD)": f"{paths_cost_usd(self.paths):.2f}",
        }


def account_usage(rows: Iterable[StackRow]) -> list[AccountUsage]:
    """This month's paths per account, every distribution counted once."""
    accounts: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.config is None or row.month is None:
            continue
        account = row.account or row.config.stack_account or "unknown"
        entry = accounts.setdefault(account, {"stacks": [], "frames": []})
        entry["stacks"].append(row.stack)
        entry["frames"].append(row.month)
    usage = []
    for account, entry in accounts.items():
        frames = [frame for frame in entry["frames"] if not frame.empty]
        month = (
            pd.concat(frames, ignore_index=True).drop_duplicates(
                ["distribution_id", "invalidation_id"]
            )
            if frames
            else pd.DataFrame(columns=["distribution_id", "invalidation_id", "path_count"])
        )
        distributions = sorted(
            {
                d
                for row in rows
                if row.config and row.stack in entry["stacks"]
                for d in row.config.distribution_ids
            }
        )
        usage.append(
            AccountUsage(
                account=account,
                stacks=entry["stacks"],
                distributions=distributions,
                invalidations=len(month),
                paths=sum(int(count) for count in month["path_count"]),
            )
        )
    return usage


@dataclass
class FleetSources:
    stacks: list[str]
    note: str


def fleet_stacks(
    stacks: Any = None,
    *,
    environ: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    cwd: Path = REPO_ROOT,
) -> FleetSources:
    """The stacks to show: the fleet file's, else ``pulumi stack ls``'s, narrowed by
    ``stacks`` (a list or a comma-separated string); ``stacks`` alone when neither answers."""
    wanted = as_list(stacks)
    fleet = read_fleet_file(environ)
    if fleet:
        names, note = list(fleet), "stacks from NCW_FLEET_FILE"
    else:
        names, note = list_stacks(which=which, run=run, cwd=cwd, environ=environ)
        if not names and environ.get(NO_PULUMI, "") not in ("", "0") and not wanted:
            note += "; no NCW_FLEET_FILE and no `stacks` parameter"
    if wanted:
        names = [name for name in names if name in wanted] or wanted
        note += f"; narrowed to {', '.join(wanted)}"
    return FleetSources(list(dict.fromkeys(names)), note)


@dataclass
class Fleet:
    rows: list[StackRow]
    accounts: list[AccountUsage]
    sources: FleetSources
    now: datetime

    def verdict(self) -> Verdict:
        if not self.rows:
            return Verdict(WARN, [f"no stack found ({self.sources.note})"], [])
        return overall(row.outcome() for row in self.rows)

    def markdown(self) -> str:
        verdict = worst(row.verdict for row in self.rows) if self.rows else WARN
        return (
            f"**{verdict}:** {len(self.rows)} stack(s) ({self.sources.note}), read at "
            f"{self.now:%Y-%m-%d %H:%M} UTC. Nothing was changed."
        )

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([row.row() for row in self.rows], columns=STACK_COLUMNS)

    def accounts_table(self) -> pd.DataFrame:
        return pd.DataFrame([usage.row() for usage in self.accounts], columns=ACCOUNT_COLUMNS)

    def month_history(self) -> pd.DataFrame:
        """Every distinct invalidation of this month across the fleet (for the chart)."""
        frames = [row.month for row in self.rows if row.month is not None and not row.month.empty]
        if not frames:
            return pd.DataFrame(
                columns=["distribution_id", "invalidation_id", "created", "path_count"]
            )
        return pd.concat(frames, ignore_index=True).drop_duplicates(
            ["distribution_id", "invalidation_id"]
        )

    def summary(self) -> dict[str, Any]:
        verdict = self.verdict()
        return {
            "generated_at": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "month": f"{month_start(self.now):%Y-%m}",
            "sources": self.sources.note,
            "stacks": [
                {**row.row(), "account": row.account, "dead_letters": row.dead_letters}
                for row in self.rows
            ],
            "accounts": [usage.row() | {"paths": usage.paths} for usage in self.accounts],
            "verdict": verdict.as_json(),
        }


def fleet_view(
    stacks: Any = None,
    *,
    aws_endpoint_url: str | None = None,
    window_hours: float = 24,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    **kwargs: Any,
) -> Fleet:
    """Every stack's row and the accounts' usage; ``kwargs`` go to ``fleet_stacks`` (tests)."""
    env = os.environ if environ is None else environ
    now = now or datetime.now(UTC)
    sources = fleet_stacks(stacks, environ=env, **kwargs)
    rows = []
    for name in sources.stacks:
        config = load_config(name, aws_endpoint_url=aws_endpoint_url or None, environ=env)
        rows.append(stack_row(config, window_hours=window_hours, now=now))
    return Fleet(rows, account_usage(rows), sources, now)


def fleet_chart(fleet: Fleet):
    """This month's paths per account as a share of the free tier, on a log scale (one path
    is a visible bar)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    figure, axis = plt.subplots(figsize=(7, 0.9 + 0.6 * max(1, len(fleet.accounts))))
    if not fleet.accounts:
        axis.text(0.5, 0.5, "no account read", ha="center", va="center")
        axis.set_axis_off()
        return figure
    labels = [usage.account for usage in fleet.accounts]
    paths = [usage.paths for usage in fleet.accounts]
    axis.set_xscale("log")
    axis.set_xlim(0.5, max(FREE_PATHS_PER_MONTH * 3, max(paths) * 3))
    bars = axis.barh(
        labels, [p - 0.5 if p > 0 else float("nan") for p in paths], left=0.5, color="#e07b39"
    )
    axis.bar_label(
        bars, labels=[f"{p:,} ({p / FREE_PATHS_PER_MONTH:.1%})" for p in paths], padding=3
    )
    axis.axvline(FREE_PATHS_PER_MONTH, color="grey", linestyle="--", label="1,000 free paths")
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.set_title("Paths this month per account, share of the free tier (log scale)")
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure
