"""What Lambda does around a handler, for the functions the local stack runs in-process.

Shared by the ALB stand-in (``local.listener``, which runs the ingest) and the event source
mapping stand-in (``local.queue_runner``, which runs the worker):

- ``LambdaContext``: the parts of Lambda's context object a handler uses, with the function's
  own name, log group, memory and timeout;
- ``FunctionRuntime``: one function, invoked as Lambda invokes it. The records its handler logs
  while it runs are collected per invocation (only the invoking thread's) and written to the
  function's CloudWatch log group in Lambda's JSON log format, between a ``platform.start`` and
  a ``platform.report`` record, so the runbook reads real records.

One log handler on the root logger serves every runtime of the process: each invocation marks
its own thread, so each function gets its own records, and none is written twice.

Several functions (and several stacks' copies of one function module) share this process, and a
handler reads its settings from ``os.environ`` and caches them in module globals (its
"container"). So invocations run one at a time (``INVOCATION_LOCK``), each with its own
function's environment applied while it runs (``environment=``), and a function module whose
cached state belongs to another function's runtime is reset first (a cold start), exactly as a
new Lambda container would start. One stack alone never alternates, so its containers stay warm.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_log = logging.getLogger("local.lambda_runtime")

Handler = Callable[[Any, "LambdaContext"], Any]

# One invocation at a time in this process: each applies its own function's environment, and
# the process environment is one for all threads (see the module docstring).
INVOCATION_LOCK = threading.RLock()
# Reset function (one per function module) -> the runtime whose state that module holds now.
_containers: dict[Callable[[], None], FunctionRuntime] = {}


@contextmanager
def environment_applied(
    values: Mapping[str, str], *, remove: tuple[str, ...] = ()
) -> Iterator[None]:
    """``values`` set (and ``remove`` unset) in ``os.environ`` while the block runs, then every
    touched variable restored; under ``INVOCATION_LOCK``, so no invocation sees half of it."""
    with INVOCATION_LOCK:
        saved = {name: os.environ.get(name) for name in (*values, *remove)}
        for name in remove:
            os.environ.pop(name, None)
        os.environ.update(values)
    try:
        yield
    finally:
        with INVOCATION_LOCK:
            restore_environment(saved)


def restore_environment(saved: Mapping[str, str | None]) -> None:
    """Put back variables saved as name -> value (None: it was not set)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class LambdaContext:
    """The parts of Lambda's context object a handler uses."""

    def __init__(
        self,
        *,
        function_name: str,
        region: str,
        account_id: str,
        log_group_name: str,
        log_stream_name: str,
        timeout_s: float,
        memory_limit_in_mb: int,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Invocation(threading.local):
    request_id: str | None = None
    records: list[tuple[int, dict]] | None = None


_current = _Invocation()


def json_log_record(record: logging.LogRecord, request_id: str | None) -> dict:
    """One log record as Lambda's JSON log format writes it (timestamp, level, message, ...)."""
    entry: dict[str, Any] = {
        "timestamp": iso_time(record.created),
        "level": record.levelname,
        "message": record.getMessage(),
        "logger": record.name,
    }
    if request_id:
        entry["requestId"] = request_id
    standard = logging.makeLogRecord({}).__dict__.keys() | {"message", "asctime", "taskName"}
    for key, value in record.__dict__.items():
        if key not in standard and not key.startswith("_"):
            entry[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
    if record.exc_info and record.exc_info[0] is not None:
        error_type, error, tb = record.exc_info
        entry["errorType"] = error_type.__name__
        entry["errorMessage"] = str(error)
        entry["stackTrace"] = traceback.format_tb(tb)
    return entry


class InvocationLogHandler(logging.Handler):
    """Collects the records logged by the thread running an invocation (and nothing else)."""

    def emit(self, record: logging.LogRecord) -> None:
        records = _current.records
        if records is None or record.name.startswith("local."):
            return
        try:
            entry = json_log_record(record, _current.request_id)
            records.append((int(record.created * 1000), entry))
        except Exception:  # a logging handler must never break the caller
            self.handleError(record)


class _LogCapture:
    """The one ``InvocationLogHandler`` on the root logger, attached while any runtime runs.

    Two handlers would each copy every record of an invocation, so runtimes share this one;
    the root level is lowered to INFO (Lambda's JSON log format default) while it is attached
    and restored when the last runtime detaches.
    """

    def __init__(self) -> None:
        self.handler = InvocationLogHandler(level=logging.DEBUG)
        self._lock = threading.Lock()
        self._users = 0
        self._saved_level: int | None = None

    def attach(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            root = logging.getLogger()
            self._saved_level = root.level
            if root.getEffectiveLevel() > logging.INFO:
                root.setLevel(logging.INFO)
            root.addHandler(self.handler)

    def detach(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users:
                return
            root = logging.getLogger()
            root.removeHandler(self.handler)
            if self._saved_level is not None:
                root.setLevel(self._saved_level)
                self._saved_level = None


LOG_CAPTURE = _LogCapture()


class CloudWatchWriter:
    """Writes invocations' records to a function's log group, in one stream of its own."""

    def __init__(self, logs: Any, log_group_name: str) -> None:
        self._logs = logs
        self._group = log_group_name
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        self.stream = f"{day}/[$LATEST]{secrets.token_hex(16)}"
        self._lock = threading.Lock()
        self._logs.create_log_stream(logGroupName=self._group, logStreamName=self.stream)

    def write(self, entries: list[tuple[int, dict]]) -> None:
        """Put (epoch milliseconds, JSON record) pairs, oldest first."""
        events = [
            {"timestamp": millis, "message": json.dumps(entry, default=str)}
            for millis, entry in sorted(entries, key=lambda pair: pair[0])
        ]
        if events:
            with self._lock:
                self._logs.put_log_events(
                    logGroupName=self._group, logStreamName=self.stream, logEvents=events
                )


def iso_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def platform_record(kind: str, request_id: str, **record: Any) -> tuple[int, dict]:
    """A Lambda platform event (``platform.start``, ``platform.report``) as a log entry."""
    now = time.time()
    entry = {"time": iso_time(now), "type": kind, "record": {"requestId": request_id, **record}}
    return int(now * 1000), entry


def _log_invocation_error(request_id: str) -> None:
    """An uncaught exception: Lambda logs it as an ERROR record of the invocation."""
    records = _current.records
    if records is not None:
        record = logging.LogRecord(
            "handler", logging.ERROR, __file__, 0, "Unhandled exception", None, sys.exc_info()
        )
        records.append((int(record.created * 1000), json_log_record(record, request_id)))


class FunctionRuntime:
    """One function run in-process as Lambda runs it: ``start()``, ``invoke(event)``, ``stop()``.

    ``reset`` (the function module's ``reset_state``, when the real handler runs) is called on
    start and stop, so a container's cached settings and clients never outlive the stack, and
    before an invocation when the module last ran for another runtime (another stack's copy of
    the function). ``environment`` is the function's own environment (its settings and Lambda's
    ``AWS_LAMBDA_*`` variables), applied to ``os.environ`` while each invocation runs.
    """

    def __init__(
        self,
        *,
        function_name: str,
        log_group_name: str,
        region: str,
        account_id: str,
        logs_client: Callable[[], Any],
        handler: Handler,
        timeout_s: float,
        memory_mb: int,
        reset: Callable[[], None] | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.function_name = function_name
        self.log_group_name = log_group_name
        self.region = region
        self.account_id = account_id
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._logs_client = logs_client
        self._handler = handler
        self._reset = reset
        self.environment = dict(environment or {})
        self._writer: CloudWatchWriter | None = None
        self._attached = False
        self.invocations = 0

    def start(self) -> FunctionRuntime:
        """Open the function's log stream and capture its logs; on failure undo and raise."""
        try:
            if self._reset is not None:
                with INVOCATION_LOCK:
                    self._reset()
                    _containers[self._reset] = self
            self._writer = CloudWatchWriter(self._logs_client(), self.log_group_name)
            LOG_CAPTURE.attach()
            self._attached = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._attached:
            LOG_CAPTURE.detach()
            self._attached = False
        self._writer = None
        if self._reset is not None:
            with INVOCATION_LOCK:
                self._reset()
                if _containers.get(self._reset) is self:
                    del _containers[self._reset]

    @property
    def log_stream_name(self) -> str:
        return self._writer.stream if self._writer else ""

    def context(self, request_id: str | None = None) -> LambdaContext:
        context = LambdaContext(
            function_name=self.function_name,
            region=self.region,
            account_id=self.account_id,
            log_group_name=self.log_group_name,
            log_stream_name=self.log_stream_name,
            timeout_s=self.timeout_s,
            memory_limit_in_mb=self.memory_mb,
        )
        if request_id:
            context.aws_request_id = request_id
        return context

    def invoke(self, event: Any, *, request_id: str | None = None) -> Any:
        """Run the handler on ``event`` as Lambda would; returns its response (or raises).

        ``request_id``: the invocation's id when the caller made it first (a function URL puts
        it in the event's ``requestContext.requestId`` too); a fresh UUID otherwise.
        """
        with INVOCATION_LOCK:
            if self._reset is not None and _containers.get(self._reset) is not self:
                self._reset()  # the module's cached state is another runtime's: a cold start
                _containers[self._reset] = self
            with environment_applied(self.environment):
                return self._invoke(event, request_id)

    def _invoke(self, event: Any, request_id: str | None) -> Any:
        context = self.context(request_id)
        request_id = context.aws_request_id
        records = [platform_record("platform.start", request_id, version="$LATEST")]
        _current.request_id, _current.records = request_id, records
        started = time.monotonic()
        try:
            return self._handler(event, context)
        except Exception:
            _log_invocation_error(request_id)
            raise
        finally:
            _current.request_id, _current.records = None, None
            duration = round((time.monotonic() - started) * 1000, 2)
            self.invocations += 1
            records.append(
                platform_record(
                    "platform.report",
                    request_id,
                    status="success" if duration <= self.timeout_s * 1000 else "timeout",
                    metrics={"durationMs": duration, "memorySizeMB": self.memory_mb},
                )
            )
            self._write_logs(records)

    def _write_logs(self, records: list[tuple[int, dict]]) -> None:
        if self._writer is None:
            return
        try:
            self._writer.write(records)
        except Exception as error:  # logs are a convenience; never fail the invocation for them
            _log.warning("could not write %s's logs to CloudWatch: %s", self.function_name, error)
