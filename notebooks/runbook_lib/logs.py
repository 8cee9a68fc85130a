"""Section 9, troubleshooting: the functions' error records over ``log_window_hours``, and every
record that names a ``deploy_id`` or ``request_id`` (CloudWatch Logs, messages masked)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_text
from runbook_lib.verdict import PASS, SKIPPED, WARN, Outcome, worst

# Term filter for CloudWatch Logs (either term); re-checked here because not every backend
# (moto) understands ``?`` alternatives.
ERROR_FILTER_PATTERN = '?ERROR ?CRITICAL ?Traceback ?"Task timed out"'
_ERROR_MARKERS = ("ERROR", "CRITICAL", "Traceback", "Task timed out")


def _parse_log_message(message: str) -> dict[str, Any]:
    text = message.strip()
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            known = {"timestamp", "level", "message", "logger", "requestId", "time", "msg"}
            extra = {k: v for k, v in record.items() if k not in known}
            return {
                "level": str(record.get("level", "")).upper(),
                "message": str(record.get("message") or record.get("msg") or ""),
                "details": json.dumps(extra, default=str) if extra else "",
                "request_id": record.get("requestId", ""),
            }
    # Lambda's text format: "[ERROR]\t2024-01-01T00:00:00.000Z\t<request id>\tmessage"
    match = re.match(r"\[(\w+)\]\s+\S+\s+(\S+)\s+(.*)", text, re.DOTALL)
    if match:
        return {
            "level": match.group(1).upper(),
            "message": match.group(3),
            "details": "",
            "request_id": match.group(2),
        }
    level = next((marker for marker in _ERROR_MARKERS if marker in text), "")
    return {"level": level.upper(), "message": text, "details": "", "request_id": ""}


def _is_error(parsed: Mapping[str, Any], raw: str) -> bool:
    if parsed["level"] in ("ERROR", "CRITICAL"):
        return True
    if parsed["level"] in ("INFO", "DEBUG", "WARNING", "WARN"):
        return "Traceback" in raw or "Task timed out" in raw
    return any(marker in raw for marker in _ERROR_MARKERS)


@dataclass
class LogErrors:
    log_group: str | None
    table: pd.DataFrame
    since: datetime | None = None
    message: str = ""
    role: str = "ingest"
    skipped: bool = False

    @property
    def verdict(self) -> str:
        if self.skipped:
            return SKIPPED
        return WARN if self.message or not self.table.empty else PASS

    def line(self) -> str:
        if self.message:
            return self.message
        since = f"{self.since:%Y-%m-%d %H:%M} UTC" if self.since else "the window's start"
        if self.table.empty:
            return f"no errors in `{self.log_group}` since {since}"
        return f"{len(self.table)} error record(s) in `{self.log_group}` since {since}"

    def markdown(self) -> str:
        text = self.line()
        if self.message:
            return f"**{self.verdict}:** {text}" if not text.startswith("**") else text
        return f"**{self.verdict}:** {text}" + (" (newest first):" if not self.table.empty else ".")


ERROR_COLUMNS = ["time", "level", "message", "details", "request_id", "stream"]


def recent_errors(
    logs,
    log_group: str,
    *,
    since_hours: float = 24,
    limit: int = 20,
    now: datetime | None = None,
    output: str = "log_group_name",
    role: str = "ingest",
) -> LogErrors:
    """The function's recent ERROR records (messages masked), newest first."""
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=since_hours)
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": int(since.timestamp() * 1000),
        "endTime": int(now.timestamp() * 1000) + 1,
        "filterPattern": ERROR_FILTER_PATTERN,
    }
    try:
        for _page in range(20):  # bounded: a noisy group must not keep the runbook busy
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                raw = event.get("message", "")
                parsed = _parse_log_message(raw)
                if not _is_error(parsed, raw):
                    continue
                rows.append(
                    {
                        "time": pd.Timestamp(event.get("timestamp", 0), unit="ms", tz="UTC"),
                        "level": parsed["level"] or "ERROR",
                        "message": mask_text(parsed["message"])[:300],
                        "details": mask_text(parsed["details"])[:300],
                        "request_id": parsed["request_id"],
                        "stream": event.get("logStreamName", ""),
                    }
                )
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = token
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            text = (
                f"log group `{log_group}` does not exist: the function has never run, or the "
                f"name is wrong (it is the stack output `{output}`)"
            )
        else:
            text = f"cannot read `{log_group}`: {error_text(error)}"
        return LogErrors(log_group, pd.DataFrame(columns=ERROR_COLUMNS), since, text, role)
    table = pd.DataFrame(rows, columns=ERROR_COLUMNS)
    if not table.empty:
        table = table.sort_values("time", ascending=False, ignore_index=True).head(limit)
    return LogErrors(log_group, table, since, role=role)


def function_errors(config: RunbookConfig, aws: AwsClients | None, **kwargs: Any) -> LogErrors:
    """The ingest's recent errors (the function behind the webhook)."""
    empty = pd.DataFrame(columns=ERROR_COLUMNS)
    if not config.live:
        return LogErrors(
            config.log_group, empty, message="**SKIPPED:** " + config.why_not_live(), skipped=True
        )
    if not config.log_group:
        return LogErrors(
            None,
            empty,
            message="the ingest's log group is unknown: set NCW_LOG_GROUP or NCW_FUNCTION_NAME",
        )
    return recent_errors((aws or AwsClients(config)).logs, config.log_group, **kwargs)


def worker_errors(config: RunbookConfig, aws: AwsClients | None, **kwargs: Any) -> LogErrors:
    """The worker's recent errors (the function that calls CloudFront)."""
    empty = pd.DataFrame(columns=ERROR_COLUMNS)
    if not config.live:
        return LogErrors(
            config.worker_log_group,
            empty,
            message="**SKIPPED:** " + config.why_not_live(),
            role="worker",
            skipped=True,
        )
    if not config.worker_log_group:
        return LogErrors(
            None,
            empty,
            message="the worker's log group is unknown: "
            + ", ".join(config.pipeline_missing("worker_log_group")),
            role="worker",
        )
    return recent_errors(
        (aws or AwsClients(config)).logs,
        config.worker_log_group,
        output="worker_log_group_name",
        role="worker",
        **kwargs,
    )


# ---------------------------------------------------------------------------- the section

SEARCH_LIMIT = 50
SEARCH_COLUMNS = ["function", "time", "level", "message", "details", "request_id"]
# A term CloudWatch can match as a quoted phrase; anything else is matched here only.
_PLAIN_TERM = re.compile(r"[A-Za-z0-9._:/-]{1,128}")


def search_records(
    logs,
    log_group: str,
    term: str,
    *,
    since: datetime,
    until: datetime,
    role: str,
    limit: int = SEARCH_LIMIT,
) -> list[dict[str, Any]]:
    """Every record of ``log_group`` that contains ``term`` (at most ``limit``), masked."""
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": int(since.timestamp() * 1000),
        "endTime": int(until.timestamp() * 1000) + 1,
    }
    if _PLAIN_TERM.fullmatch(term):
        kwargs["filterPattern"] = json.dumps(term)  # a quoted term: that exact text
    rows: list[dict[str, Any]] = []
    for _page in range(20):  # bounded, as above
        page = logs.filter_log_events(**kwargs)
        for event in page.get("events", []):
            raw = event.get("message", "")
            if term not in raw:  # backends without filter patterns, and odd terms
                continue
            parsed = _parse_log_message(raw)
            rows.append(
                {
                    "function": role,
                    "time": pd.Timestamp(event.get("timestamp", 0), unit="ms", tz="UTC"),
                    "level": parsed["level"] or "",
                    "message": mask_text(parsed["message"])[:300],
                    "details": mask_text(parsed["details"])[:300],
                    "request_id": parsed["request_id"],
                }
            )
        token = page.get("nextToken")
        if len(rows) >= limit or not token or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    return rows[:limit]


@dataclass
class Troubleshooting:
    errors: list[LogErrors]
    window_hours: float
    terms: list[tuple[str, str]]  # ("deploy_id", value), ("request_id", value)
    matches: pd.DataFrame
    search_problems: list[str]
    skipped: str | None = None
    found: dict[str, int] = field(default_factory=dict)  # term -> records that name it

    def _not_found(self) -> list[str]:
        return [
            f"no record names {kind} `{value}` in the last {self.window_hours:g} h"
            for kind, value in self.terms
            if not self.found.get(value)
        ]

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("troubleshooting", SKIPPED, [self.skipped])
        verdict = worst(item.verdict for item in self.errors)
        reasons = [item.line() for item in self.errors if item.verdict == WARN]
        reasons += self.search_problems + self._not_found()
        if reasons:
            return Outcome("troubleshooting", WARN, reasons)
        return Outcome(
            "troubleshooting",
            verdict,
            [f"no errors in the last {self.window_hours:g} h"],
        )

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
        outcome = self.outcome()
        lines = [outcome.markdown()]
        if self.terms:
            looked = ", ".join(f"{kind} `{value}`" for kind, value in self.terms)
            lines.append(f"\nRecords naming {looked}: {len(self.matches)} (oldest first).")
        return "\n".join(lines)

    def tables(self) -> list[Any]:
        parts: list[Any] = []
        for item in self.errors:
            parts.append(
                f"**{item.role.capitalize()}** (`{item.log_group or '?'}`): {item.line()}."
            )
            parts.append(item.table)
        if self.terms:
            parts.append(self.matches)
        return parts


def troubleshoot(
    config: RunbookConfig,
    aws: AwsClients | None,
    *,
    window_hours: float = 24,
    deploy_id: str | None = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> Troubleshooting:
    """Section 9: each function's errors over ``window_hours``; with ``deploy_id`` or
    ``request_id``, every record that names it, in every function's log group."""
    now = now or datetime.now(UTC)
    terms = [
        (kind, value)
        for kind, value in (("deploy_id", deploy_id), ("request_id", request_id))
        if value
    ]
    empty = pd.DataFrame(columns=SEARCH_COLUMNS)
    if not config.live:
        return Troubleshooting([], window_hours, terms, empty, [], skipped=config.why_not_live())
    aws = aws or AwsClients(config)
    options = {"since_hours": window_hours, "now": now}
    errors = [function_errors(config, aws, **options), worker_errors(config, aws, **options)]
    groups = [("ingest", config.log_group), ("worker", config.worker_log_group)]
    if config.reconciler_log_group:
        errors.append(
            recent_errors(
                aws.logs,
                config.reconciler_log_group,
                output="reconciler_log_group_name",
                role="reconciler",
                **options,
            )
        )
        groups.append(("reconciler", config.reconciler_log_group))
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    since = now - timedelta(hours=window_hours)
    found: dict[str, int] = {}
    for _kind, value in terms:
        for role, group in groups:
            if not group:
                continue
            try:
                records = search_records(aws.logs, group, value, since=since, until=now, role=role)
            except Exception as error:
                problems.append(f"cannot search `{group}`: {error_text(error)}")
                continue
            found[value] = found.get(value, 0) + len(records)
            rows += records
    matches = pd.DataFrame(rows, columns=SEARCH_COLUMNS)
    if not matches.empty:
        matches = matches.drop_duplicates().sort_values("time", ignore_index=True)
    return Troubleshooting(errors, window_hours, terms, matches, sorted(set(problems)), found=found)
