"""The invalidation queue -> CloudFront: one CreateInvalidation per queued message.

Lambda handler: ``function.worker.handler``, invoked by an SQS event source mapping with
``ReportBatchItemFailures``. Each record's story is parse -> check -> invalidate -> report:

- success: the record is processed (Lambda deletes it);
- a transient failure (throttling, 5xx, ``TooManyInvalidationsInProgress``, a connection error,
  an answer too slow, cut off or unparseable): the record is listed in ``batchItemFailures`` and
  its visibility set to ``visibility_timeout_s(n, jitter)``, so SQS redelivers it later with
  exponential backoff until its redrive policy moves it to the dead-letter queue;
- a permanent failure (a malformed message, a distribution this worker may not invalidate,
  ``AccessDenied``, ``NoSuchDistribution``, ``InvalidationBatchAlreadyExists``, any other 4xx):
  the original body goes to the dead-letter queue with an ``error_code`` attribute and the
  record is processed, so it is not retried for hours. If that send fails the record is listed:
  a message is never dropped.

Records are handled one by one and independently: an unexpected exception for one is logged and
lists that record only. The handler never raises. Every AWS call runs under a hard deadline
taken from the invocation's remaining time (``aws_calls.call_with_deadline``), so the batch is
reported before the Lambda timeout even when an endpoint trickles its answer.

Per container, created at first use and kept: the settings (validated once; a bad value lists
every record and is logged once) and the boto3 clients. Nothing is created at import.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from . import lambda_logging, webhook_settings
from .aws_calls import (
    AWS_ERRORS,
    Budget,
    call_with_deadline,
    client_config,
    error_code,
    is_transient,
)
from .container import SettingsOnce, cached_client
from .invalidation_message import (
    ERROR_CODE_ATTRIBUTE,
    InvalidationMessage,
    MessageError,
    bounded,
    parse_message,
)
from .webhook_settings import SettingsError, WorkerSettings

logger = logging.getLogger("worker")

# Transient failures come back after min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**(n - 1)) seconds
# (n = the record's ApproximateReceiveCount), up to BACKOFF_JITTER_PERCENT shorter so that the
# messages of one burst do not all return together. With infra/pipeline.py's MAX_RECEIVE_COUNT
# (12) the retries span 1.6-2 hours (the sum for n = 1..12) before SQS dead-letters the message.
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 900
BACKOFF_JITTER_PERCENT = 20

# The time budget (the worker's timeout is infra/pipeline.py's WORKER_TIMEOUT_SECONDS, 120 s).
# A record needs one CloudFront call and at most one SQS call after it (the visibility change or
# the dead-letter send), so CloudFront is called only while both fit in the remaining time
# before REPORT_MARGIN_MS, which is kept to log and return the batch's answer.
CLOUDFRONT_CONNECT_TIMEOUT_S = 2
CLOUDFRONT_READ_TIMEOUT_S = 5
# One attempt's worst case when the endpoint answers at all; the hard deadline covers the rest.
CLOUDFRONT_DEADLINE_S = float(CLOUDFRONT_CONNECT_TIMEOUT_S + CLOUDFRONT_READ_TIMEOUT_S)
# botocore may retry an SQS call once (a throttled or dropped request); the deadline bounds both.
SQS_CONNECT_TIMEOUT_S = 2
SQS_READ_TIMEOUT_S = 3
SQS_ATTEMPTS = 2
SQS_DEADLINE_S = 5.0
REPORT_MARGIN_MS = 1000
# A call is not started with less than this left for it: it would most likely be cut off.
MIN_CALL_MS = 500

# Dead-letter attributes: the "error" description is bounded (SQS allows 256 KiB in all, the
# runbook shows it in a table).
MAX_ERROR_CHARS = 256

# The queue owns CloudFront retries (the record's next delivery, after the backoff, with the same
# CallerReference), so botocore makes one attempt and never waits on its own.
_CLOUDFRONT_CONFIG = client_config(
    connect_s=CLOUDFRONT_CONNECT_TIMEOUT_S, read_s=CLOUDFRONT_READ_TIMEOUT_S, attempts=1
)
_SQS_CONFIG = client_config(
    connect_s=SQS_CONNECT_TIMEOUT_S, read_s=SQS_READ_TIMEOUT_S, attempts=SQS_ATTEMPTS
)

# Seam for tests: the backoff's jitter, a float in [0, 1).
_jitter = random.random

# A record's outcome; the listed ones are reported in batchItemFailures.
INVALIDATED = "invalidated"
DEAD_LETTERED = "dead_lettered"
RETRY_LATER = "retry_later"  # transient: visibility changed (when it could be)
DEAD_LETTER_FAILED = "dead_letter_failed"  # permanent, but the dead-letter send failed
OUT_OF_TIME = "out_of_time"  # not attempted: too little time left in this invocation
MISCONFIGURED = "misconfigured"  # the worker's settings are bad
ERROR = "error"  # an unexpected exception
LISTED_OUTCOMES = frozenset({RETRY_LATER, DEAD_LETTER_FAILED, OUT_OF_TIME, MISCONFIGURED, ERROR})


# -- container state ---------------------------------------------------------------------------


@dataclass
class _ContainerState:
    settings: SettingsOnce[WorkerSettings] = field(
        default_factory=lambda: SettingsOnce(webhook_settings.load_worker_settings, logger)
    )
    clients: dict[str, Any] = field(default_factory=dict)


_state = _ContainerState()


lambda_logging.configure(logger)


def reset_state(keep_clients: bool = False) -> None:
    """Forget the cached settings (or their error) and clients, as a new container would.

    For tests and the local stack, which change the environment between runs.
    """
    global _state
    _state = _ContainerState(clients=_state.clients if keep_clients else {})
    lambda_logging.configure(logger)


def settings() -> WorkerSettings | SettingsError:
    """The settings from the environment, read and validated once per container."""
    return _state.settings.get()


def _client(service: str, config: Config) -> Any:
    return cached_client(_state.clients, service, config, logger)


def cloudfront_client() -> Any:
    return _client("cloudfront", _CLOUDFRONT_CONFIG)


def sqs_client() -> Any:
    return _client("sqs", _SQS_CONFIG)


# -- decisions (pure) ---------------------------------------------------------------------------


def visibility_timeout_s(receive_count: int, jitter: float) -> int:
    """Seconds until a transiently failed message comes back: exponential backoff, capped.

    ``min(900, 30 * 2**(n - 1))`` for the n-th receive, shortened by ``jitter`` (0 to 1) times at
    most 20 %: never longer than the ceiling, never shorter than 80 % of it. A count below 1
    counts as 1; a jitter outside [0, 1] (or NaN) is clamped into it.
    """
    n = max(1, receive_count)
    # 2**(n - 1) only while it can matter: 30 * 2**5 = 960 is already past the cap.
    ceiling = BACKOFF_CAP_S if n > 6 else min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (n - 1))
    if not 0.0 <= jitter <= 1.0:
        jitter = 1.0 if jitter > 1.0 else 0.0  # NaN compares false both ways: no jitter
    most = ceiling * BACKOFF_JITTER_PERCENT // 100
    return ceiling - min(most, int(most * jitter))


def receive_count(record: dict) -> int:
    """The record's ApproximateReceiveCount (1 on its first delivery); 1 when unreadable."""
    attributes = record.get("attributes")
    raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None
    try:
        return max(1, int(str(raw)))
    except ValueError:
        return 1


def message_id(record: object) -> str | None:
    """The record's messageId, the item identifier Lambda expects in batchItemFailures."""
    if isinstance(record, dict):
        value = record.get("messageId")
        if isinstance(value, str) and value:
            return value
    return None


def source_queue_url(record: dict) -> str | None:
    """The URL of the queue the record came from, from its eventSourceARN; None if unusable."""
    arn = record.get("eventSourceARN")
    return webhook_settings.queue_url_from_arn(arn) if isinstance(arn, str) else None


def _describe(text: str) -> str:
    """``text`` as a short, single-line, printable description (a dead-letter attribute)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text).strip()
    return bounded(cleaned, MAX_ERROR_CHARS) or "no description"


def aws_error_text(error: BaseException) -> str:
    """AWS's message for a ClientError, else the exception's text; bounded."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        text = str(response.get("Error", {}).get("Message") or "")
        if text:
            return _describe(text)
    return _describe(str(error) or type(error).__name__)


def dead_letter_attributes(code: str, description: str, record: dict) -> dict[str, dict]:
    """The dead-letter message's attributes: why it failed and where it came from."""
    attributes = {
        ERROR_CODE_ATTRIBUTE: {"DataType": "String", "StringValue": _describe(code)},
        "error": {"DataType": "String", "StringValue": _describe(description)},
        "receive_count": {"DataType": "Number", "StringValue": str(receive_count(record))},
    }
    source = message_id(record)
    if source is not None:
        attributes["source_message_id"] = {"DataType": "String", "StringValue": _describe(source)}
    return attributes


# -- acting ---------------------------------------------------------------------------------------


class _Record:
    """One record in flight: the record, its time budget and the fields its log lines carry."""

    def __init__(
        self, record: dict, settings: WorkerSettings, budget: Budget, request_id: str | None
    ) -> None:
        self.record = record
        self.settings = settings
        self.budget = budget
        self.receive_count = receive_count(record)
        self.fields: dict[str, Any] = {
            "request_id": request_id,
            "message_id": message_id(record),
            "receive_count": self.receive_count,
        }

    def seconds_for(self, cap_s: float, reserve_ms: float = 0) -> float | None:
        """The deadline for a call that needs at most ``cap_s``, keeping ``reserve_ms`` (and the
        report margin) for what follows it; None when too little time is left to start it."""
        available_ms = self.budget.remaining_ms() - REPORT_MARGIN_MS - reserve_ms
        if available_ms < MIN_CALL_MS:
            return None
        return min(cap_s, available_ms / 1000)


def process(record: dict, current: WorkerSettings, budget: Budget, request_id: str | None) -> str:
    """parse -> check -> invalidate -> report, for one record; returns its outcome."""
    item = _Record(record, current, budget, request_id)
    try:
        message = parse_message(record.get("body"))
    except MessageError as error:
        return dead_letter(item, "MalformedMessage", str(error))
    item.fields.update(
        deploy_id=message.deploy_id,
        distribution_id=message.distribution_id,
        caller_reference=message.caller_reference,
    )
    if message.distribution_id not in current.distribution_ids:
        return dead_letter(
            item,
            "DistributionNotAllowed",
            f"distribution {message.distribution_id} is not in this worker's "
            f"{webhook_settings.ENV_DISTRIBUTION_IDS}",
        )
    return invalidate(item, message)


def invalidate(item: _Record, message: InvalidationMessage) -> str:
    """CreateInvalidation with exactly the message's paths and CallerReference.

    The reference makes a redelivery safe: CloudFront answers a known reference with the same
    paths with the existing invalidation. That also covers a call abandoned at its deadline that
    reached CloudFront after all.
    """
    seconds = item.seconds_for(CLOUDFRONT_DEADLINE_S, reserve_ms=SQS_DEADLINE_S * 1000)
    if seconds is None:
        # No visibility change either (no time to be sure it ends): the record comes back after
        # the queue's own visibility timeout, a long pause that suits a batch slowed this much.
        logger.warning(
            "message %s not attempted: too little time left",
            item.fields["message_id"],
            extra={**item.fields, "outcome": OUT_OF_TIME},
        )
        return OUT_OF_TIME
    client = cloudfront_client()
    batch = {
        "Paths": {"Quantity": len(message.paths), "Items": list(message.paths)},
        "CallerReference": message.caller_reference,
    }
    try:
        response = call_with_deadline(
            "CreateInvalidation",
            seconds,
            lambda: client.create_invalidation(
                DistributionId=message.distribution_id, InvalidationBatch=batch
            ),
        )
    except AWS_ERRORS as error:
        code = error_code(error)
        if is_transient(error):
            return retry_later(item, code)
        return dead_letter(item, code, aws_error_text(error))
    invalidation = response.get("Invalidation") if isinstance(response, dict) else None
    invalidation_id = invalidation.get("Id") if isinstance(invalidation, dict) else None
    if not isinstance(invalidation_id, str):
        return retry_later(item, "IncompleteAnswer")  # parsed, but without the invalidation
    logger.info(
        "invalidation %s for distribution %s, deploy %s",
        invalidation_id,
        message.distribution_id,
        message.deploy_id,
        extra={**item.fields, "outcome": INVALIDATED, "invalidation_id": invalidation_id},
    )
    return INVALIDATED


def retry_later(item: _Record, code: str) -> str:
    """List the record and push its next delivery back by the backoff (when that is possible)."""
    timeout = visibility_timeout_s(item.receive_count, _jitter())
    queue_url = source_queue_url(item.record)
    changed: int | None = None
    problem: str | None = None
    seconds = item.seconds_for(SQS_DEADLINE_S)
    receipt = item.record.get("receiptHandle")
    if queue_url is None:
        problem = "the record's eventSourceARN is not an SQS queue ARN"
    elif seconds is None:
        problem = "too little time left"
    else:
        client = sqs_client()
        try:
            call_with_deadline(
                "ChangeMessageVisibility",
                seconds,
                lambda: client.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=timeout
                ),
            )
            changed = timeout
        except AWS_ERRORS as error:
            problem = f"ChangeMessageVisibility failed ({error_code(error)})"
    if changed is not None:
        detail = f"it comes back in {changed} s"
    else:  # it comes back after the queue's own visibility timeout instead
        detail = f"its visibility is unchanged: {problem}"
    logger.warning(
        "CreateInvalidation for message %s failed (%s); %s",
        item.fields["message_id"],
        code,
        detail,
        extra={
            **item.fields,
            "outcome": RETRY_LATER,
            "error_code": code,
            "visibility_timeout_s": changed,
            "visibility_problem": problem,
        },
    )
    return RETRY_LATER


def dead_letter(item: _Record, code: str, description: str) -> str:
    """Send the original body to the dead-letter queue; the record is listed if that fails."""
    fields = {**item.fields, "error_code": code, "error": _describe(description)}
    seconds = item.seconds_for(SQS_DEADLINE_S)
    failure: str | None = "too little time left" if seconds is None else None
    if seconds is not None:
        client = sqs_client()
        body = item.record.get("body")
        attributes = dead_letter_attributes(code, description, item.record)
        try:
            call_with_deadline(
                "SendMessage",
                seconds,
                lambda: client.send_message(
                    QueueUrl=item.settings.dead_letter_queue_url,
                    MessageBody=body,
                    MessageAttributes=attributes,
                ),
            )
        except AWS_ERRORS as error:
            failure = f"SendMessage failed ({error_code(error)})"
    if failure is not None:
        logger.error(
            "message %s cannot succeed (%s) and cannot be dead-lettered: %s; it will come back",
            item.fields["message_id"],
            code,
            failure,
            extra={**fields, "outcome": DEAD_LETTER_FAILED, "dead_letter_problem": failure},
        )
        return DEAD_LETTER_FAILED
    logger.error(
        "message %s dead-lettered: %s",
        item.fields["message_id"],
        code,
        extra={**fields, "outcome": DEAD_LETTERED},
    )
    return DEAD_LETTERED


# -- the handler ----------------------------------------------------------------------------------


def handler(event: dict, context: object) -> dict:
    """Lambda entry point for the SQS event source mapping; never raises.

    Returns ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}``: the records to
    deliver again. The others are deleted by Lambda.
    """
    budget = Budget(context)
    request_id = getattr(context, "aws_request_id", None)
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        logger.error(
            "the event has no Records list", extra={"request_id": request_id, "outcome": ERROR}
        )
        records = []
    current = settings()
    failures: list[dict[str, str]] = []
    outcomes: Counter[str] = Counter()
    for record in records:
        identifier = message_id(record)
        if isinstance(current, SettingsError):
            outcome = MISCONFIGURED  # logged once per container by settings()
        elif not isinstance(record, dict) or identifier is None:
            # Nothing to list (Lambda would fail the whole batch on a bad identifier); SQS
            # never sends such a record.
            logger.error(
                "a record without a messageId", extra={"request_id": request_id, "outcome": ERROR}
            )
            outcome = ERROR
        else:
            try:
                outcome = process(record, current, budget, request_id)
            except Exception as error:  # one record's bug must not fail the others
                logger.exception(
                    "unexpected %s for message %s",
                    type(error).__name__,
                    identifier,
                    extra={"request_id": request_id, "message_id": identifier, "outcome": ERROR},
                )
                outcome = ERROR
        outcomes[outcome] += 1
        if outcome in LISTED_OUTCOMES and identifier is not None:
            failures.append({"itemIdentifier": identifier})
    # One line per batch, like an access log: what became of its records.
    logger.info(
        "batch of %d record(s): %d to retry",
        len(records),
        len(failures),
        extra={
            "request_id": request_id,
            "outcome": "batch",
            "records": len(records),
            "listed": len(failures),
            **{f"count_{name}": count for name, count in sorted(outcomes.items())},
        },
    )
    return {"batchItemFailures": failures}
