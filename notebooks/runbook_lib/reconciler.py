"""Section 4, the reconciler: its last run, what it found, and its metrics.

The reconciler (``function.reconciler``, only on a stack with a Netlify API token) compares
Netlify's published deploy with the invalidations every few minutes, queues the ones the webhook
never heard of, and checks that our Netlify hooks exist and are enabled. Each run logs one
structured (JSON) line with its counts, and puts them as CloudWatch metrics (namespace
``NetlifyCloudFrontWebhook``, dimension ``Stack``). This section reads both; it changes nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from function import webhook_settings
from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_text
from runbook_lib.pipeline import age_text
from runbook_lib.verdict import PASS, SKIPPED, WARN, Outcome

NAMESPACE = "NetlifyCloudFrontWebhook"
DIMENSION = "Stack"
# Metric -> the key of the same count in the run's log line.
METRICS = {
    "MissedPublishes": "missed_publishes",
    "UnhealthyHooks": "unhealthy_hooks",
    "NetlifyApiErrors": "netlify_api_errors",
}
RUN_KEYS = tuple(METRICS.values())
LOG_PAGES = 10  # bounded: a chatty group must not keep the runbook busy
METRIC_COLUMNS = ["metric", "runs with it", "sum", "latest", "latest at"]
_LAMBDA_KEYS = {"timestamp", "level", "logger", "requestId", "time", "msg"}


@dataclass
class ReconcilerRun:
    time: datetime
    fields: dict[str, Any]

    def count(self, key: str) -> int:
        try:
            return int(self.fields.get(key) or 0)
        except (TypeError, ValueError):
            return 0


def _run_record(message: str) -> dict[str, Any] | None:
    """A log line's fields when it is a run line (JSON holding the run's counts), else None."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not any(key in record for key in RUN_KEYS):
        return None
    return {key: value for key, value in record.items() if key not in _LAMBDA_KEYS}


def reconciler_runs(
    logs, log_group: str, *, since: datetime, until: datetime
) -> list[ReconcilerRun]:
    """The reconciler's run lines between ``since`` and ``until``, oldest first."""
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": int(since.timestamp() * 1000),
        "endTime": int(until.timestamp() * 1000) + 1,
    }
    runs: list[ReconcilerRun] = []
    for _page in range(LOG_PAGES):
        page = logs.filter_log_events(**kwargs)
        for event in page.get("events", []):
            fields = _run_record(event.get("message", ""))
            if fields is not None:
                stamp = datetime.fromtimestamp(int(event.get("timestamp") or 0) / 1000, UTC)
                runs.append(ReconcilerRun(stamp, fields))
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    runs.sort(key=lambda run: run.time)
    return runs


def reconciler_metrics(
    cloudwatch, stack_name: str, *, since: datetime, until: datetime
) -> pd.DataFrame:
    """Each metric over the window: in how many periods it was above 0, its sum, the latest."""
    rows = []
    # CloudWatch answers at most 1,440 datapoints a call: 5-minute periods up to 5 days.
    period = max(300, math.ceil((until - since).total_seconds() / 1440 / 60) * 60)
    for metric in METRICS:
        answer = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric,
            Dimensions=[{"Name": DIMENSION, "Value": stack_name}],
            StartTime=since,
            # Up to the end of the current period: the one still filling is included.
            EndTime=until + timedelta(seconds=period),
            Period=period,
            Statistics=["Sum", "Maximum"],
        )
        points = sorted(answer.get("Datapoints") or [], key=lambda point: point["Timestamp"])
        latest = points[-1] if points else None
        rows.append(
            {
                "metric": metric,
                "runs with it": sum(1 for point in points if (point.get("Maximum") or 0) > 0),
                "sum": int(sum(point.get("Sum") or 0 for point in points)),
                "latest": int(latest.get("Maximum") or 0) if latest else "",
                "latest at": pd.Timestamp(latest["Timestamp"]) if latest else "",
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


@dataclass
class ReconcilerStatus:
    function_name: str | None = None
    log_group: str | None = None
    window_hours: float = 24
    runs: list[ReconcilerRun] = field(default_factory=list)
    metrics: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=METRIC_COLUMNS))
    problems: list[str] = field(default_factory=list)  # what could not be read
    skipped: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def last_run(self) -> ReconcilerRun | None:
        return self.runs[-1] if self.runs else None

    def findings(self) -> list[str]:
        """What the last run found, in words (empty: nothing)."""
        run = self.last_run
        if run is None:
            return []
        found = []
        missed, hooks, errors = (run.count(key) for key in RUN_KEYS)
        if missed:
            found.append(
                f"{missed} publish(es) the webhook never heard of: the reconciler queued their "
                "invalidations (section 3 shows the queue)"
            )
        if hooks:
            found.append(
                f"{hooks} of our Netlify hooks missing or disabled: Netlify sends nothing until "
                "fixed (section 10; `enable_disabled_hooks = True` re-enables them)"
            )
        if errors:
            found.append(f"{errors} Netlify API error(s): the next run tries again")
        return found

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("reconciler", SKIPPED, [self.skipped])
        reasons = list(self.problems)
        if self.last_run is None:
            reasons.append(
                f"no run logged in the last {self.window_hours:g} h in `{self.log_group}`: is its "
                "schedule enabled?"
            )
        reasons += self.findings()
        if reasons:
            return Outcome("reconciler", WARN, reasons)
        assert self.last_run is not None
        age = age_text((self.now - self.last_run.time).total_seconds())
        return Outcome("reconciler", PASS, [f"last run {age} ago found nothing missed"])

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
        outcome = self.outcome()
        lines = [outcome.markdown()]
        run = self.last_run
        if run is not None:
            age = age_text((self.now - run.time).total_seconds())
            lines.append(
                f"\nLast run: {run.time:%Y-%m-%d %H:%M:%S} UTC ({age} ago); {len(self.runs)} "
                f"run(s) in the last {self.window_hours:g} h. Its line:"
            )
        return "\n".join(lines)

    def tables(self) -> list[Any]:
        parts: list[Any] = []
        if self.last_run is not None:
            fields = [
                {"field": key, "value": mask_text(json.dumps(value, default=str))[:300]}
                for key, value in self.last_run.fields.items()
            ]
            parts.append(pd.DataFrame(fields, columns=["field", "value"]))
        if not self.metrics.empty:
            parts.append(f"Metrics over the last {self.window_hours:g} h (namespace {NAMESPACE}):")
            parts.append(self.metrics)
        return parts


def _stack_dimension(aws: AwsClients, config: RunbookConfig) -> str:
    """The ``Stack`` dimension: the reconciler's own STACK_NAME, else the stack's name."""
    try:
        found = aws.lambda_.get_function_configuration(FunctionName=config.reconciler_function_name)
    except Exception:  # section 2 reports an unreadable function; the stack name will do
        return config.stack
    variables = (found.get("Environment") or {}).get("Variables") or {}
    return variables.get(webhook_settings.ENV_STACK_NAME) or config.stack


def reconciler_status(
    config: RunbookConfig,
    aws: AwsClients | None,
    *,
    window_hours: float = 24,
    now: datetime | None = None,
) -> ReconcilerStatus:
    """Section 4: the reconciler's runs over ``window_hours`` and its metrics."""
    now = now or datetime.now(UTC)
    if not config.live:
        return ReconcilerStatus(skipped=config.why_not_live(), now=now)
    if not config.reconciler_function_name and not config.reconciler_log_group:
        return ReconcilerStatus(
            skipped="this stack has no reconciler (the stack config sets no netlifyApiToken; "
            "outputs `reconciler_function_name`, `reconciler_log_group_name`)",
            now=now,
        )
    aws = aws or AwsClients(config)
    since = now - timedelta(hours=window_hours)
    status = ReconcilerStatus(
        function_name=config.reconciler_function_name,
        log_group=config.reconciler_log_group,
        window_hours=window_hours,
        now=now,
    )
    if config.reconciler_log_group:
        try:
            status.runs = reconciler_runs(
                aws.logs, config.reconciler_log_group, since=since, until=now
            )
        except Exception as error:
            status.problems.append(
                f"cannot read `{config.reconciler_log_group}`: {error_text(error)}"
            )
    stack_name = _stack_dimension(aws, config) if config.reconciler_function_name else config.stack
    try:
        status.metrics = reconciler_metrics(aws.cloudwatch, stack_name, since=since, until=now)
    except Exception as error:
        status.problems.append(f"cannot read the metrics: {error_text(error)}")
    return status
