"""The SQS event source mapping stand-in: polls the invalidation queue, runs the worker in-process.

moto has no event source mapping runner without Docker, so this does what the mapping the program
creates (``batch_size=BATCH_SIZE``, ``function_response_types=["ReportBatchItemFailures"]``)
does with each batch:

1. ``ReceiveMessage`` up to ``BATCH_SIZE`` messages with all their attributes, under the queue's
   own visibility timeout (as the mapping does);
2. shape them as the SQS Lambda event (``Records`` with ``messageId``, ``receiptHandle``,
   ``body``, ``attributes``, ``messageAttributes``, ``md5OfBody``, ``eventSource: "aws:sqs"``,
   ``eventSourceARN``, ``awsRegion``) and invoke ``function.worker.handler`` with a Lambda-like
   context; its logs go to the worker's log group (``local.lambda_runtime``);
3. delete the records that are not in the answer's ``batchItemFailures``; listed ones stay and
   come back when their visibility timeout (the worker's backoff) ends. As Lambda does, an
   exception or an answer it cannot read (not JSON, an item without a usable ``itemIdentifier``,
   one naming a message that is not in the batch) fails the whole batch: nothing is deleted.

Two ways to drive it:

- ``start(background=True)``: a thread polls until ``stop()`` (``make local``, ``make demo``);
  its long polls last ``POLL_WAIT_S`` so stopping is prompt. Retries wait in real time.
- ``poll_once()``, ``advance()``, ``run_until_idle()``: synchronous, for tests. The runner keeps
  a simulated clock (``clock``): when the worker lists a record, the runner reads the visibility
  timeout the worker gave it (recorded as moto receives each ``ChangeMessageVisibility``) and
  schedules the record; ``advance()`` moves the clock to the next scheduled record and makes it
  visible at once (``ChangeMessageVisibility`` 0), so hours of backoff take milliseconds while
  SQS still counts every receive (and moves the message to the dead-letter queue after
  ``maxReceiveCount``).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from function import worker as worker_module
from infra.pipeline import BATCH_SIZE, WORKER_MEMORY_MB, WORKER_TIMEOUT_SECONDS
from local.lambda_runtime import FunctionRuntime, Handler, LambdaContext

POLL_WAIT_S = 1  # the real mapping long-polls 20 s; 1 s keeps stop() prompt
HISTORY_LENGTH = 1000  # batches kept in ``history`` (a long ``make local`` session stays small)
_IDLE_AFTER_ERROR_S = 1.0
_log = logging.getLogger("local.queue_runner")


class RunnerSite(Protocol):
    """What the runner needs of the local stack (``local.stack.LocalStack``)."""

    region: str

    @property
    def account_id(self) -> str: ...

    queue_url: str
    queue_arn: str

    @property
    def worker_function_name(self) -> str: ...

    @property
    def worker_log_group_name(self) -> str: ...

    def client(self, service: str) -> Any: ...


def _worker_handler(event: Any, context: LambdaContext) -> Any:
    # Looked up at each call, so a test that patches ``worker.handler`` reaches it.
    return worker_module.handler(event, context)


def _reset_worker_state() -> None:
    reset = getattr(worker_module, "reset_state", None)
    if callable(reset):
        reset()


# -- the SQS event ---------------------------------------------------------------------------


def lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """An SQS API message attribute as the Lambda event writes it (camelCase, binary base64)."""

    def b64(data: bytes | str) -> str:
        raw = data.encode() if isinstance(data, str) else data
        return base64.b64encode(raw).decode("ascii")

    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [b64(item) for item in value.get("BinaryListValues") or []],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = b64(value["BinaryValue"])
    return attribute


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received message (``ReceiveMessage``'s shape) as a record of the Lambda SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: lambda_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class BadBatchResponse(ValueError):
    """A worker answer Lambda cannot use: the whole batch counts as failed."""


def listed_failures(response: object, message_ids: list[str]) -> list[str]:
    """The message ids the answer lists in ``batchItemFailures``, in the order listed.

    As the Lambda docs describe partial batch responses: no answer, an empty object or a null or
    empty list is complete success; an answer that is not JSON, an item whose ``itemIdentifier``
    is missing, empty or not a message of the batch is complete failure (BadBatchResponse).
    """
    try:
        json.dumps(response)
    except (TypeError, ValueError):
        raise BadBatchResponse("the answer is not JSON") from None
    if response is None:
        return []
    if not isinstance(response, dict):
        raise BadBatchResponse("the answer is not a JSON object")
    failures = response.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        raise BadBatchResponse("batchItemFailures is not a list")
    known = set(message_ids)
    listed: list[str] = []
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            raise BadBatchResponse("an item of batchItemFailures has no itemIdentifier")
        if identifier not in known:
            raise BadBatchResponse(f"itemIdentifier {identifier!r} is not a message of the batch")
        if identifier not in listed:
            listed.append(identifier)
    return listed


# -- what moto receives ----------------------------------------------------------------------


class VisibilityRecorder:
    """The visibility timeouts SQS (moto, in this process) is asked for, by receipt handle.

    Wraps moto's ``SQSBackend.change_message_visibility`` (which ``ChangeMessageVisibilityBatch``
    also goes through) while installed, so the runner learns exactly what the worker asked for,
    whichever client the worker made its call with.
    """

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self._lock = threading.Lock()
        self._requested: dict[str, int] = {}
        self._original: Any = None

    def install(self) -> None:
        from moto.sqs.models import SQSBackend

        if self._original is not None:
            return
        original = SQSBackend.change_message_visibility
        recorder = self

        def change_message_visibility(
            self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
        ) -> None:
            original(self, queue_name, receipt_handle, visibility_timeout)
            if queue_name == recorder.queue_name:  # only changes SQS accepted are recorded
                with recorder._lock:
                    recorder._requested[receipt_handle] = int(visibility_timeout)

        self._original = original
        SQSBackend.change_message_visibility = change_message_visibility

    def uninstall(self) -> None:
        from moto.sqs.models import SQSBackend

        if self._original is not None:
            SQSBackend.change_message_visibility = self._original
            self._original = None

    def take(self, receipt_handle: str) -> int | None:
        """The last visibility timeout set with this receipt handle (forgotten once read)."""
        with self._lock:
            return self._requested.pop(receipt_handle, None)


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRecord:
    message_id: str
    receive_count: int
    body: str


@dataclass(frozen=True)
class BatchResult:
    """One invocation of the worker, as the mapping saw it."""

    at_s: float  # the runner's clock when the batch was received
    records: tuple[ReceivedRecord, ...]
    listed: tuple[str, ...]  # message ids left in the queue (all of them when ``error``)
    deleted: tuple[str, ...]
    error: str | None = None  # why the whole batch failed, if it did
    # Message id -> the visibility timeout (s) the worker set for it, for listed records.
    visibility_s: dict[str, int] = field(default_factory=dict)

    @property
    def message_ids(self) -> tuple[str, ...]:
        return tuple(record.message_id for record in self.records)


class SimulatedClock:
    """Seconds since the runner started, moved only by ``advance_to`` (synchronous mode)."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance_to(self, moment_s: float) -> None:
        with self._lock:
            self._now = max(self._now, moment_s)


@dataclass
class _Scheduled:
    due_s: float
    receipt_handle: str


class QueueRunner:
    """The event source mapping of one queue and one worker; see the module docstring."""

    def __init__(
        self,
        site: RunnerSite,
        *,
        invoke: Handler | None = None,
        batch_size: int = BATCH_SIZE,
        poll_wait_s: int = POLL_WAIT_S,
        timeout_s: float = WORKER_TIMEOUT_SECONDS,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.site = site
        self.environment = environment  # the worker's own (local.lambda_runtime)
        self.batch_size = batch_size
        self.poll_wait_s = poll_wait_s
        self.clock = SimulatedClock()
        self.history: deque[BatchResult] = deque(maxlen=HISTORY_LENGTH)
        self._invoke = invoke
        self._timeout_s = timeout_s
        self._runtime: FunctionRuntime | None = None
        self._sqs: Any = None
        self._queue_visibility_s = 0
        self._recorder = VisibilityRecorder(site.queue_url.rstrip("/").rsplit("/", 1)[-1])
        self._scheduled: dict[str, _Scheduled] = {}
        self._lock = threading.Lock()  # one batch at a time, as one mapping poller
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[BatchResult], None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, background: bool = False) -> QueueRunner:
        """Open the worker's log stream; with ``background`` poll in a thread until ``stop()``."""
        try:
            self._sqs = self.site.client("sqs")
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.site.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            self._queue_visibility_s = int(attributes["VisibilityTimeout"])
            self._recorder.install()
            self._runtime = FunctionRuntime(
                function_name=self.site.worker_function_name,
                log_group_name=self.site.worker_log_group_name,
                region=self.site.region,
                account_id=self.site.account_id,
                logs_client=lambda: self.site.client("logs"),
                handler=self._invoke or _worker_handler,
                timeout_s=self._timeout_s,
                memory_mb=WORKER_MEMORY_MB,
                reset=None if self._invoke else _reset_worker_state,
                environment=self.environment,
            ).start()
            if background:
                self.start_polling()
        except BaseException:
            self.stop()
            raise
        return self

    def start_polling(self) -> None:
        """Poll in a background thread from now on (records scheduled so far are forgotten)."""
        if self._runtime is None:
            raise RuntimeError("start() the queue runner first")
        if self._thread is not None:
            return
        self._scheduled.clear()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll_forever, name="local-queue-runner", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the poller to stop after its current poll, without waiting (``stop()`` waits)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop polling (after the batch in progress) and release the worker. Safe twice."""
        self._stop.set()
        if self._thread is not None:
            # A poll lasts at most poll_wait_s plus one invocation (bounded by the timeout).
            self._thread.join(timeout=self.poll_wait_s + self._timeout_s + 10)
            if self._thread.is_alive():
                _log.warning("the queue runner's thread did not stop in time")
            self._thread = None
        if self._runtime is not None:
            self._runtime.stop()
            self._runtime = None
        self._recorder.uninstall()

    @property
    def background(self) -> bool:
        return self._thread is not None

    @property
    def invocations(self) -> int:
        return self._runtime.invocations if self._runtime else 0

    def on_batch(self, listener: Callable[[BatchResult], None]) -> None:
        """Call ``listener`` with each batch's result (the demo prints them)."""
        self._listeners.append(listener)

    def _poll_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_s=self.poll_wait_s)
            except Exception as error:  # a failed poll is retried, as the mapping retries
                _log.warning("the queue runner could not poll %s: %s", self.site.queue_url, error)
                self._stop.wait(_IDLE_AFTER_ERROR_S)

    # -- one batch -------------------------------------------------------------------------

    def poll_once(self, *, wait_s: int = 0) -> BatchResult | None:
        """Receive one batch and run the worker on it; None when the queue had nothing."""
        with self._lock:
            if self._runtime is None:
                raise RuntimeError("start() the queue runner first")
            messages = self._sqs.receive_message(
                QueueUrl=self.site.queue_url,
                MaxNumberOfMessages=self.batch_size,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=wait_s,
            ).get("Messages", [])
            if not messages:
                return None
            result = self._run_batch(messages)
            self.history.append(result)
        for listener in self._listeners:
            try:
                listener(result)
            except Exception as error:  # an observer must not stop the mapping
                _log.warning("a batch listener failed: %s", error)
        return result

    def _run_batch(self, messages: list[dict[str, Any]]) -> BatchResult:
        assert self._runtime is not None
        at_s = self.clock.now()
        site = self.site
        records = [sqs_record(message, site.queue_arn, site.region) for message in messages]
        message_ids = [record["messageId"] for record in records]
        error: str | None = None
        try:
            response = self._runtime.invoke({"Records": records})
            listed = listed_failures(response, message_ids)
        except BadBatchResponse as bad:
            error, listed = f"invalid response: {bad}", list(message_ids)
        except Exception as failure:  # Lambda reports a function error: the batch is retried
            error, listed = f"function error: {type(failure).__name__}", list(message_ids)
        deleted = self._delete([record for record in records if record["messageId"] not in listed])

        visibility: dict[str, int] = {}
        handles = {record["messageId"]: record["receiptHandle"] for record in records}
        for message_id in listed:
            requested = self._recorder.take(handles[message_id])
            if requested is not None:
                visibility[message_id] = requested
            if not self.background:
                delay = requested if requested is not None else self._queue_visibility_s
                self._scheduled[message_id] = _Scheduled(at_s + delay, handles[message_id])
        for message_id in deleted:
            self._recorder.take(handles[message_id])
        return BatchResult(
            at_s=at_s,
            records=tuple(
                ReceivedRecord(
                    message_id=record["messageId"],
                    receive_count=int(record["attributes"].get("ApproximateReceiveCount", 0)),
                    body=record["body"],
                )
                for record in records
            ),
            listed=tuple(listed),
            deleted=tuple(deleted),
            error=error,
            visibility_s=visibility,
        )

    def _delete(self, records: list[dict[str, Any]]) -> list[str]:
        deleted: list[str] = []
        for start in range(0, len(records), 10):  # DeleteMessageBatch takes 10 entries
            chunk = records[start : start + 10]
            answer = self._sqs.delete_message_batch(
                QueueUrl=self.site.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                    for index, record in enumerate(chunk)
                ],
            )
            for entry in answer.get("Successful", []):
                deleted.append(chunk[int(entry["Id"])]["messageId"])
            for entry in answer.get("Failed", []):
                _log.warning(
                    "could not delete message %s: %s",
                    chunk[int(entry["Id"])]["messageId"],
                    entry.get("Code"),
                )
        return deleted

    # -- the simulated clock ---------------------------------------------------------------

    @property
    def scheduled(self) -> dict[str, float]:
        """Message id -> the simulated moment its record becomes visible again."""
        return {message_id: item.due_s for message_id, item in self._scheduled.items()}

    def advance(self) -> float | None:
        """Move the clock to the next scheduled record and make it (and any due) visible now.

        Returns the new clock reading, or None when nothing is scheduled.
        """
        if self.background:
            raise RuntimeError("advance() drives a runner started without background polling")
        if not self._scheduled:
            return None
        due_s = min(item.due_s for item in self._scheduled.values())
        self.clock.advance_to(due_s)
        for message_id, item in list(self._scheduled.items()):
            if item.due_s <= due_s:
                del self._scheduled[message_id]
                self._make_visible(item.receipt_handle)
        # moto shows a message once its visibility moment is strictly past (millisecond clock).
        time.sleep(0.005)
        return due_s

    def _make_visible(self, receipt_handle: str) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.site.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0
            )
        except Exception as error:  # deleted meanwhile (by hand, or the runbook's redrive)
            _log.info("could not make a scheduled message visible: %s", error)
        self._recorder.take(receipt_handle)  # the runner's own change, not the worker's

    def run_until_idle(self, *, max_batches: int = 200) -> list[BatchResult]:
        """Poll and advance until the queue returns nothing and nothing is scheduled.

        Raises RuntimeError after ``max_batches`` batches (a worker that never settles).
        """
        results: list[BatchResult] = []
        while True:
            result = self.poll_once()
            if result is not None:
                results.append(result)
                if len(results) >= max_batches:
                    raise RuntimeError(f"the queue was not idle after {max_batches} batches")
                continue
            if self.advance() is None:
                return results
