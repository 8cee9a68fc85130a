"""Section 8, troubleshooting: the functions' recent error records from CloudWatch Logs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_text

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

    def markdown(self) -> str:
        if self.message:
            return self.message
        if self.table.empty:
            return f"✅ No errors in `{self.log_group}` since {self.since:%Y-%m-%d %H:%M} UTC."
        return f"⚠️ {len(self.table)} error record(s) in `{self.log_group}` (newest first):"


ERROR_COLUMNS = ["time", "level", "message", "details", "request_id", "stream"]


def recent_errors(
    logs,
    log_group: str,
    *,
    since_hours: float = 24,
    limit: int = 20,
    now: datetime | None = None,
    output: str = "log_group_name",
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
                f"Log group `{log_group}` does not exist: the function has never run, or the "
                f"name is wrong (it is the stack output `{output}`)."
            )
        else:
            text = f"Cannot read `{log_group}`: {error_text(error)}"
        return LogErrors(log_group, pd.DataFrame(columns=ERROR_COLUMNS), since, text)
    table = pd.DataFrame(rows, columns=ERROR_COLUMNS)
    if not table.empty:
        table = table.sort_values("time", ascending=False, ignore_index=True).head(limit)
    return LogErrors(log_group, table, since)


def function_errors(config: RunbookConfig, aws: AwsClients | None, **kwargs: Any) -> LogErrors:
    """The ingest's recent errors (the function behind the webhook)."""
    empty = pd.DataFrame(columns=ERROR_COLUMNS)
    if not config.live:
        return LogErrors(config.log_group, empty, message="**Skipped:** " + config.missing()[0])
    if not config.log_group:
        return LogErrors(
            None,
            empty,
            message="**Skipped:** no log group known: set NCW_LOG_GROUP or NCW_FUNCTION_NAME.",
        )
    return recent_errors((aws or AwsClients(config)).logs, config.log_group, **kwargs)


def worker_errors(config: RunbookConfig, aws: AwsClients | None, **kwargs: Any) -> LogErrors:
    """The worker's recent errors (the function that calls CloudFront)."""
    empty = pd.DataFrame(columns=ERROR_COLUMNS)
    if not config.live:
        return LogErrors(
            config.worker_log_group, empty, message="**Skipped:** " + config.missing()[0]
        )
    if not config.worker_log_group:
        return LogErrors(
            None,
            empty,
            message="**Skipped:** the worker's log group is unknown: "
            + ", ".join(config.pipeline_missing("worker_log_group")),
        )
    return recent_errors(
        (aws or AwsClients(config)).logs,
        config.worker_log_group,
        output="worker_log_group_name",
        **kwargs,
    )
