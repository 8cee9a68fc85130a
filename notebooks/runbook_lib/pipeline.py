"""Section 3, the pipeline: queue depth, the oldest message, dead letters, alarms, redrive.

The ingest queues one message per target distribution; the worker turns each into a
CloudFront invalidation, retrying with backoff. The worker puts what can never succeed into the
dead-letter queue with the message attribute ``error_code``; SQS moves there what still fails
after ``MAX_RECEIVE_COUNT`` receives (without that attribute).

Reading the dead-letter queue loses nothing: messages are received with a short visibility
timeout, never deleted, and made visible again at once. That raises the receive count of the
dead-letter copy only (the queue's redrive policy counts receives in the main queue). Only the
redrive, switched off by default, moves messages: each body is sent to the main queue as it is,
and deleted from the dead-letter queue only once the send succeeded.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from function.invalidation_message import ERROR_CODE_ATTRIBUTE
from infra.pipeline import MAX_RECEIVE_COUNT, OLDEST_MESSAGE_ALARM_SECONDS
from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_text
from runbook_lib.verdict import FAIL, PASS, SKIPPED, WARN, Outcome

# The worker's message attribute on what it dead-letters (function.worker).
DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
# At most this many dead letters are listed (the total comes from the queue's attributes).
PEEK_LIMIT = 50
# Long enough to page through PEEK_LIMIT messages without seeing one twice; the peek then makes
# them visible again itself, so this is only the worst case if the runbook dies mid-way.
PEEK_VISIBILITY_S = 30
# Long polling (> 0) asks every SQS server; short polling samples a few and can answer "empty"
# while messages wait. One second per call keeps the whole read bounded.
RECEIVE_WAIT_S = 1
REDRIVE_LIMIT = 100
# Time to send one batch on and delete it; a message whose send failed is made visible again.
REDRIVE_VISIBILITY_S = 60
METRIC_WINDOW_MIN = 30
ALARM_PAGES = 10  # describe_alarms pages of 100: bounded even on a crowded account
ALARM_STATE = "ALARM"

DEAD_LETTER_COLUMNS = [
    "deploy",
    "distribution",
    "error",
    "receive count",
    "age",
    "sent",
    "message id",
]
ALARM_COLUMNS = ["alarm", "state", "reason", "updated", "metric"]


def queue_name(url: str) -> str:
    """The queue's name: the last segment of its URL (the ``QueueName`` metric dimension)."""
    return urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def age_text(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 04 h``; ``-`` when unknown."""
    if seconds is None or math.isnan(seconds):
        return "-"
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{whole // 86400} d {whole % 86400 // 3600:02d} h"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


# ---------------------------------------------------------------------------- depth


@dataclass
class QueueDepth:
    role: str  # "queue" or "dead-letter queue"
    url: str
    visible: int | None = None
    in_flight: int | None = None
    delayed: int | None = None
    oldest_age_s: float | None = None
    oldest_note: str = ""
    error: str | None = None

    @property
    def name(self) -> str:
        return queue_name(self.url)

    @property
    def total(self) -> int:
        return (self.visible or 0) + (self.in_flight or 0) + (self.delayed or 0)

    def row(self) -> dict[str, Any]:
        return {
            "queue": f"{self.role} `{self.name}`",
            "waiting": self.visible,
            "in flight": self.in_flight,
            "delayed": self.delayed,
            "oldest message": age_text(self.oldest_age_s) if self.oldest_age_s is not None else "",
            "note": self.error or self.oldest_note,
        }


def oldest_message_age(
    cloudwatch, name: str, *, now: datetime | None = None, window_min: int = METRIC_WINDOW_MIN
) -> tuple[float | None, str]:
    """The latest ``ApproximateAgeOfOldestMessage`` of queue ``name`` in the last
    ``window_min`` minutes (seconds), and where it came from; None + why when there is none."""
    now = _now(now)
    try:
        answer = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": name}],
            StartTime=now - timedelta(minutes=window_min),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )
    except Exception as error:
        return None, f"oldest message: cannot read CloudWatch ({error_text(error)})"
    points = [p for p in answer.get("Datapoints") or [] if p.get("Maximum") is not None]
    if not points:
        # SQS publishes its metrics only while a queue is active; moto publishes none.
        return None, f"oldest message: no data in CloudWatch for the last {window_min} min"
    latest = max(points, key=lambda point: point["Timestamp"])
    stamp = latest["Timestamp"]
    when = f"{stamp:%H:%M} UTC" if isinstance(stamp, datetime) else str(stamp)
    return float(latest["Maximum"]), f"oldest message: CloudWatch at {when}"


def queue_depth(
    sqs, cloudwatch, url: str, role: str = "queue", *, now: datetime | None = None
) -> QueueDepth:
    """How many messages wait, are in flight and are delayed, and the oldest one's age."""
    depth = QueueDepth(role, url)
    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES)
        ).get("Attributes", {})
    except Exception as error:
        depth.error = f"cannot read the {role}: {error_text(error)}"
        return depth
    depth.visible, depth.in_flight, depth.delayed = (
        int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES
    )
    if cloudwatch is not None:
        depth.oldest_age_s, depth.oldest_note = oldest_message_age(cloudwatch, depth.name, now=now)
    return depth


# ---------------------------------------------------------------------------- dead letters


def _body_fields(body: str) -> tuple[str, str]:
    """The deploy and distribution a body names; placeholders when it is not a message."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, Mapping):
        return "(not an invalidation message)", "-"

    def text(key: str) -> str:
        value = document.get(key)
        return mask_text(str(value))[:64] if value not in (None, "") else "-"

    return text("deploy_id"), text("distribution_id")


def dead_letter_row(message: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """One table row for a received dead-letter message."""
    attributes = message.get("Attributes") or {}
    error = (message.get("MessageAttributes") or {}).get(ERROR_CODE_ATTRIBUTE) or {}
    deploy, distribution = _body_fields(message.get("Body") or "")
    sent_ms = attributes.get("SentTimestamp")
    sent = pd.Timestamp(int(sent_ms), unit="ms", tz="UTC") if sent_ms else pd.NaT
    age = (now - sent.to_pydatetime()).total_seconds() if sent_ms else None
    count = attributes.get("ApproximateReceiveCount")
    return {
        "deploy": deploy,
        "distribution": distribution,
        "error": mask_text(str(error.get("StringValue")))[:128]
        if error.get("StringValue")
        else f"(no {ERROR_CODE_ATTRIBUTE}: moved by SQS after {MAX_RECEIVE_COUNT} receives)",
        "receive count": int(count) if count else None,
        "age": age_text(age),
        "sent": sent,
        "message id": message.get("MessageId"),
    }


@dataclass
class DeadLetters:
    url: str | None
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DEAD_LETTER_COLUMNS))
    limit: int = PEEK_LIMIT
    error: str | None = None

    @property
    def listed(self) -> int:
        return len(self.table)


def _receive(sqs, url: str, *, count: int, visibility_s: int) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, count)),
        VisibilityTimeout=visibility_s,
        WaitTimeSeconds=RECEIVE_WAIT_S,
        MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def _make_visible(sqs, url: str, messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """Visibility 0 for ``messages`` (batches of 10); the ids SQS refused."""
    messages = list(messages)
    refused: list[str] = []
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, m in enumerate(messages[start : start + 10])
        ]
        try:
            answer = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception:
            refused += [m.get("MessageId", "") for m in messages[start : start + 10]]
            continue
        refused += [
            messages[start + int(failed["Id"])].get("MessageId", "")
            for failed in answer.get("Failed", [])
        ]
    return refused


def peek_dead_letters(
    sqs, url: str, *, limit: int = PEEK_LIMIT, now: datetime | None = None
) -> DeadLetters:
    """Up to ``limit`` dead-letter messages as a table, without removing any: received with a
    short visibility timeout, never deleted, and made visible again right after."""
    result = DeadLetters(url, limit=limit)
    seen: dict[str, dict[str, Any]] = {}
    try:
        # Bounded: one call per 10 messages, and two spare calls for SQS's partial answers.
        for _call in range(math.ceil(limit / 10) + 2):
            if len(seen) >= limit:
                break
            batch = _receive(sqs, url, count=limit - len(seen), visibility_s=PEEK_VISIBILITY_S)
            if not batch:
                break
            for message in batch:
                seen.setdefault(message["MessageId"], message)
    except Exception as error:
        result.error = f"cannot read the dead-letter queue: {error_text(error)}"
    finally:
        refused = _make_visible(sqs, url, seen.values()) if seen else []
    if refused:
        extra = f"{len(refused)} listed message(s) stay hidden for up to {PEEK_VISIBILITY_S} s"
        result.error = f"{result.error}; {extra}" if result.error else extra
    stamp = _now(now)
    rows = [dead_letter_row(message, stamp) for message in seen.values()]
    table = pd.DataFrame(rows, columns=DEAD_LETTER_COLUMNS)
    if not table.empty:
        table = table.sort_values("sent", ignore_index=True)  # oldest first
    result.table = table
    return result


# ---------------------------------------------------------------------------- alarms


def _utc(value: Any) -> Any:
    """A timestamp from boto3 (a datetime, aware or not) in UTC; NaT when absent."""
    stamp = pd.Timestamp(value) if value else pd.NaT
    if stamp is pd.NaT:
        return stamp
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _alarm_dimension_values(alarm: Mapping[str, Any]) -> set[str]:
    dimensions = list(alarm.get("Dimensions") or [])
    for query in alarm.get("Metrics") or []:  # metric-math alarms
        metric = (query.get("MetricStat") or {}).get("Metric") or {}
        dimensions += metric.get("Dimensions") or []
    return {str(d.get("Value")) for d in dimensions if d.get("Value")}


def _alarm_metric(alarm: Mapping[str, Any]) -> str:
    if alarm.get("MetricName"):
        return f"{alarm.get('Namespace', '')} {alarm['MetricName']}".strip()
    return "metric math" if alarm.get("Metrics") else "composite"


@dataclass
class AlarmStates:
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ALARM_COLUMNS))
    topic_arn: str | None = None
    others: int = 0  # alarms on a shared topic that name none of this stack's resources
    error: str | None = None
    skipped: str | None = None

    @property
    def in_alarm(self) -> list[str]:
        return [str(name) for name in self.table.loc[self.table["state"] == ALARM_STATE, "alarm"]]


def alarm_states(
    cloudwatch,
    *,
    topic_arn: str | None,
    resource_names: Iterable[str] = (),
    name_prefix: str | None = None,
) -> AlarmStates:
    """The state of the stack's alarms: those whose actions include ``topic_arn`` (or, without
    it, whose names start with ``name_prefix``), kept when they name one of the stack's
    resources (a dimension value, or the name containing one) since a topic may serve a fleet."""
    result = AlarmStates(topic_arn=topic_arn)
    names = {name for name in resource_names if name}
    query: dict[str, Any] = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 100}
    if topic_arn:
        query["ActionPrefix"] = topic_arn
    elif name_prefix:
        query["AlarmNamePrefix"] = name_prefix
    else:
        result.skipped = "no alarm topic and no resource names to find the alarms by"
        return result
    found: list[dict[str, Any]] = []
    try:
        for _page in range(ALARM_PAGES):
            page = cloudwatch.describe_alarms(**query)
            found += page.get("MetricAlarms") or []
            found += page.get("CompositeAlarms") or []
            token = page.get("NextToken")
            if not token or token == query.get("NextToken"):
                break
            query["NextToken"] = token
    except Exception as error:
        result.error = f"cannot list the alarms: {error_text(error)}"
        return result

    if topic_arn:  # ActionPrefix matches prefixes: "topic" would match "topic-2"
        found = [alarm for alarm in found if topic_arn in (alarm.get("AlarmActions") or [])]

    def ours(alarm: Mapping[str, Any]) -> bool:
        if not names:
            return True
        title = str(alarm.get("AlarmName", ""))
        return bool(_alarm_dimension_values(alarm) & names) or any(n in title for n in names)

    kept = [alarm for alarm in found if ours(alarm)]
    result.others = len(found) - len(kept)
    rows = [
        {
            "alarm": alarm.get("AlarmName"),
            "state": alarm.get("StateValue"),
            "reason": mask_text(str(alarm.get("StateReason") or ""))[:200],
            "updated": _utc(alarm.get("StateUpdatedTimestamp")),
            "metric": _alarm_metric(alarm),
        }
        for alarm in kept
    ]
    order = {ALARM_STATE: 0, "INSUFFICIENT_DATA": 1, "OK": 2}
    rows.sort(key=lambda row: (order.get(str(row["state"]), 3), str(row["alarm"])))
    result.table = pd.DataFrame(rows, columns=ALARM_COLUMNS)
    return result


# ---------------------------------------------------------------------------- redrive


@dataclass
class Redrive:
    enabled: bool
    moved: int = 0
    send_failed: int = 0
    delete_failed: int = 0  # sent to the queue but still in the dead-letter queue as well
    limit: int = REDRIVE_LIMIT
    error: str | None = None
    skipped: str | None = None

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("redrive", SKIPPED, [self.skipped])
        if not self.enabled:
            return Outcome("redrive", SKIPPED, ["switched off (`redrive_dead_letters = False`)"])
        if self.error or self.send_failed or self.delete_failed:
            return Outcome("redrive", FAIL, [self.error or "some messages were not moved"])
        return Outcome("redrive", PASS, [f"moved {self.moved} dead letter(s) back to the queue"])

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
        if not self.enabled:
            return (
                "Nothing moved (`redrive_dead_letters = False`). Fix the cause shown in the "
                "`error` column first, then set `redrive_dead_letters = True` and re-run: each "
                "message goes back to the queue unchanged and the worker tries it again."
            )
        verdict = "FAIL" if self.error or self.send_failed or self.delete_failed else "PASS"
        lines = [
            f"**{verdict}:** moved {self.moved} dead-letter message(s) back to the queue "
            f"(at most {self.limit} a run)."
        ]
        if self.send_failed:
            lines.append(
                f"- {self.send_failed} could not be sent and stay in the dead-letter queue."
            )
        if self.delete_failed:
            lines.append(
                f"- {self.delete_failed} were sent but could not be deleted from the dead-letter "
                "queue: they are in both; a second attempt makes no second invalidation (same "
                "caller reference)."
            )
        if self.error:
            lines.append(f"- {self.error}")
        if self.moved >= self.limit:
            lines.append("- The limit was reached: re-run to move more.")
        return "\n".join(lines)


def redrive_dead_letters(
    sqs,
    dead_letter_queue_url: str,
    queue_url: str,
    *,
    enabled: bool = False,
    limit: int = REDRIVE_LIMIT,
) -> Redrive:
    """Move up to ``limit`` dead-letter messages back to the queue when ``enabled``: each body
    is sent unchanged, then deleted from the dead-letter queue, only after the send succeeded.
    Stops at the first failed send (the others would fail alike) and leaves that one visible."""
    result = Redrive(enabled, limit=limit)
    if not enabled:
        return result
    tried: set[str] = set()
    for _call in range(math.ceil(limit / 10) + 2):
        handled = result.moved + result.send_failed + result.delete_failed
        if handled >= limit:
            break
        try:
            batch = _receive(
                sqs, dead_letter_queue_url, count=limit - handled, visibility_s=REDRIVE_VISIBILITY_S
            )
        except Exception as error:
            result.error = f"cannot read the dead-letter queue: {error_text(error)}"
            return result
        batch = [m for m in batch if m["MessageId"] not in tried]
        if not batch:
            break
        for index, message in enumerate(batch):
            tried.add(message["MessageId"])
            try:
                sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
            except Exception as error:
                result.send_failed += 1
                result.error = f"cannot send to the queue: {error_text(error)}"
                _make_visible(sqs, dead_letter_queue_url, batch[index:])
                return result
            try:
                sqs.delete_message(
                    QueueUrl=dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            except Exception as error:
                result.delete_failed += 1
                result.error = f"sent, but still in the dead-letter queue: {error_text(error)}"
                continue
            result.moved += 1
    return result


# ---------------------------------------------------------------------------- the section


@dataclass
class PipelineStatus:
    queue: QueueDepth | None = None
    dead_letter_queue: QueueDepth | None = None
    dead_letters: DeadLetters | None = None
    alarms: AlarmStates | None = None
    missing: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def problems(self) -> list[str]:
        """What is wrong with the pipeline, worst first (empty: PASS)."""
        found: list[str] = []
        if self.alarms and self.alarms.in_alarm:
            found.append(f"alarm(s) in ALARM: {', '.join(self.alarms.in_alarm)}")
        count = self.dead_letter_count
        if count:
            found.append(
                f"{count} message(s) in the dead-letter queue: those invalidations did not "
                "happen, so the site may serve stale pages"
            )
        if (
            self.queue
            and self.queue.oldest_age_s is not None
            and self.queue.oldest_age_s >= OLDEST_MESSAGE_ALARM_SECONDS
        ):
            found.append(
                f"the oldest queued message is {age_text(self.queue.oldest_age_s)} old: "
                "invalidations are stuck (CloudFront refusing, or the worker failing)"
            )
        return found

    @property
    def warnings(self) -> list[str]:
        """What could not be read or is unknown."""
        found = [f"unknown: {item}" for item in self.missing]
        for part in (self.queue, self.dead_letter_queue, self.dead_letters, self.alarms):
            if part is not None and part.error:
                found.append(part.error)
        if self.alarms and self.alarms.skipped:
            found.append(f"alarms not read: {self.alarms.skipped}")
        return found

    @property
    def dead_letter_count(self) -> int:
        """The dead-letter queue's depth (approximate), never fewer than the listed ones."""
        listed = self.dead_letters.listed if self.dead_letters else 0
        if self.dead_letter_queue and not self.dead_letter_queue.error:
            return max(self.dead_letter_queue.total, listed)
        return listed

    @property
    def verdict(self) -> str:
        if self.skipped:
            return SKIPPED
        if self.problems:
            return FAIL
        return WARN if self.warnings else PASS

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("pipeline", SKIPPED, [self.skipped])
        reasons = {FAIL: self.problems, WARN: self.warnings}.get(self.verdict) or [self._headline()]
        return Outcome("pipeline", self.verdict, reasons)

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
        lines = [f"**{self.verdict}:** " + self._headline()]
        lines += [f"- FAIL: {problem}" for problem in self.problems]
        lines += [f"- WARN: {warning}" for warning in self.warnings]
        if self.missing:
            lines.append(
                "- The stack outputs above come with the pipeline: a stack deployed before it "
                "has none (`pulumi up`), and the environment names them as shown."
            )
        letters = self.dead_letters
        if letters and letters.listed:
            shown = f"{letters.listed} of {self.dead_letter_count}"
            lines.append(
                f"\nDead letters ({shown}, oldest first; at most {letters.limit} listed). "
                "Listing them left them in the dead-letter queue; it raised the receive count "
                "of the dead-letter copy only."
            )
        if self.alarms and not self.alarms.skipped and not self.alarms.error:
            where = f"on topic `{self.alarms.topic_arn}`" if self.alarms.topic_arn else "by name"
            lines.append(f"\nAlarms {where}: {len(self.alarms.table)}.")
            if self.alarms.others:
                lines.append(f"({self.alarms.others} more on that topic belong to other stacks.)")
        return "\n".join(lines)

    def _headline(self) -> str:
        parts = []
        if self.queue and not self.queue.error:
            oldest = (
                f", oldest {age_text(self.queue.oldest_age_s)}"
                if self.queue.oldest_age_s is not None
                else ""
            )
            parts.append(f"{self.queue.visible} waiting, {self.queue.in_flight} in flight{oldest}")
        if self.dead_letters is not None or self.dead_letter_queue is not None:
            parts.append(f"{self.dead_letter_count} dead letter(s)")
        if self.alarms and not self.alarms.skipped and not self.alarms.error:
            parts.append(f"{len(self.alarms.in_alarm)} alarm(s) in ALARM")
        return "; ".join(parts) or "nothing could be read"

    def tables(self) -> list[pd.DataFrame]:
        depths = [q.row() for q in (self.queue, self.dead_letter_queue) if q is not None]
        frames = [pd.DataFrame(depths)] if depths else []
        if self.dead_letters is not None:
            frames.append(self.dead_letters.table)
        if self.alarms is not None:
            frames.append(self.alarms.table)
        return frames


def pipeline_status(
    config: RunbookConfig,
    aws: AwsClients | None,
    *,
    peek_limit: int = PEEK_LIMIT,
    now: datetime | None = None,
) -> PipelineStatus:
    """Section 3: the queue's depth and oldest message, the dead letters and the alarms.
    Changes nothing; what is unknown is named, not fatal."""
    if not config.live:
        return PipelineStatus(skipped=config.why_not_live())
    # The worker's names only narrow the alarms; section 8 reports its log group.
    status = PipelineStatus(
        missing=config.pipeline_missing("queue_url", "dead_letter_queue_url", "alarm_topic_arn")
    )
    aws = aws or AwsClients(config)
    if config.queue_url:
        status.queue = queue_depth(aws.sqs, aws.cloudwatch, config.queue_url, now=now)
    if config.dead_letter_queue_url:
        # The depth first: while the peek holds them, the dead letters count as in flight.
        status.dead_letter_queue = queue_depth(
            aws.sqs, aws.cloudwatch, config.dead_letter_queue_url, "dead-letter queue", now=now
        )
        status.dead_letters = peek_dead_letters(
            aws.sqs, config.dead_letter_queue_url, limit=peek_limit, now=now
        )
    names = [queue_name(url) for url in (config.queue_url, config.dead_letter_queue_url) if url] + [
        name for name in (config.function_name, config.worker_function_name) if name
    ]
    status.alarms = alarm_states(
        aws.cloudwatch,
        topic_arn=config.alarm_topic_arn,
        resource_names=names,
        name_prefix=config.function_name,
    )
    return status


def redrive(config: RunbookConfig, aws: AwsClients | None, *, enabled: bool = False) -> Redrive:
    """Section 3's action: the dead letters back to the queue, only when ``enabled``."""
    if not config.live:
        return Redrive(enabled, skipped=config.why_not_live())
    missing = config.pipeline_missing("queue_url", "dead_letter_queue_url")
    if missing:
        return Redrive(enabled, skipped="unknown: " + ", ".join(missing))
    if not enabled:
        return Redrive(enabled)
    assert config.queue_url and config.dead_letter_queue_url  # checked by pipeline_missing
    return redrive_dead_letters(
        (aws or AwsClients(config)).sqs,
        config.dead_letter_queue_url,
        config.queue_url,
        enabled=True,
    )


def pipeline_summary(status: PipelineStatus | None, moved: Redrive | None) -> dict[str, Any]:
    """The section's outcome, JSON-safe, for the run summary."""
    status = status or PipelineStatus(skipped="not run")
    queue = status.queue
    letters = status.dead_letters
    alarms = status.alarms
    return {
        "verdict": status.verdict,
        "skipped": status.skipped,
        "missing": list(status.missing),
        "problems": status.problems,
        "queue": {
            "url": queue.url,
            "visible": queue.visible,
            "in_flight": queue.in_flight,
            "delayed": queue.delayed,
            "oldest_age_s": queue.oldest_age_s,
            "oldest_note": queue.oldest_note,
            "error": queue.error,
        }
        if queue
        else None,
        "dead_letters": {
            "count": status.dead_letter_count,
            "listed": letters.listed,
            "rows": json.loads(letters.table.to_json(orient="records", date_format="iso") or "[]"),
            "error": letters.error,
        }
        if letters
        else None,
        "alarms": {
            "listed": len(alarms.table),
            "in_alarm": alarms.in_alarm,
            "states": dict(zip(alarms.table["alarm"], alarms.table["state"], strict=True)),
            "error": alarms.error,
            "skipped": alarms.skipped,
        }
        if alarms
        else None,
        "redrive": {
            "enabled": moved.enabled,
            "moved": moved.moved,
            "send_failed": moved.send_failed,
            "delete_failed": moved.delete_failed,
            "error": moved.error,
            "skipped": moved.skipped,
        }
        if moved
        else None,
    }
