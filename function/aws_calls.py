"""What every function shares about calling AWS: time budgets, hard deadlines, error classes.

Standard library and botocore only (this module ships inside the Lambda package).

botocore's ``read_timeout`` bounds each socket read, not the whole call: an endpoint that answers
byte by byte keeps a call alive far past any timeout. ``call_with_deadline`` runs the call in a
daemon thread and stops waiting at the deadline, so a Lambda always answers (or reports its batch)
before its own timeout; the abandoned thread ends with its socket's next read timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.parsers import ResponseParserError

T = TypeVar("T")

# Without a Lambda context (a local run), pretend the function was given this long.
DEFAULT_BUDGET_MS = 10_000

# The error codes that say "try again later", whatever the HTTP status says.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "TooManyInvalidationsInProgress",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "KMS.ThrottlingException",
    }
)


class DeadlineExceeded(Exception):
    """The call did not finish before its deadline (an endpoint that answers too slowly)."""

    def __init__(self, operation: str, seconds: float) -> None:
        super().__init__(f"{operation} did not finish within {seconds:.1f} s")
        self.operation = operation


# The exceptions a call to AWS can end with that are about AWS, not about our code. botocore
# raises ResponseParserError (not a BotoCoreError) for an answer it cannot parse.
AWS_ERRORS: tuple[type[Exception], ...] = (
    ClientError,
    BotoCoreError,
    ResponseParserError,
    DeadlineExceeded,
)


class Budget:
    """The time this invocation has left, from the Lambda context when there is one."""

    def __init__(self, context: object, default_ms: float = DEFAULT_BUDGET_MS) -> None:
        getter: Callable[[], float] | None = getattr(context, "get_remaining_time_in_millis", None)
        self._getter = getter if callable(getter) else None
        self._deadline = time.monotonic() + default_ms / 1000

    def remaining_ms(self) -> float:
        if self._getter is not None:
            return float(self._getter())
        return (self._deadline - time.monotonic()) * 1000


def client_config(*, connect_s: float, read_s: float, attempts: int = 1) -> Config:
    """A botocore config with short timeouts; ``attempts`` counts botocore's own tries."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=connect_s,
        read_timeout=read_s,
    )


def call_with_deadline(operation: str, seconds: float, call: Callable[[], T]) -> T:
    """``call()``'s result, or its exception, if it ends within ``seconds``; else DeadlineExceeded.

    The call runs in a daemon thread, so a caller that gave up does not keep the process alive.
    """
    if seconds <= 0:
        raise DeadlineExceeded(operation, 0)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=run, name=f"aws-{operation}", daemon=True).start()
    if not done.wait(seconds):
        raise DeadlineExceeded(operation, seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def error_code(error: BaseException) -> str:
    """AWS's error code (``AccessDenied``), or the exception's class name for SDK-side errors."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "Unknown")
    return type(error).__name__


def http_status(error: BaseException) -> int:
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def is_transient(error: BaseException) -> bool:
    """Whether retrying later can succeed: throttling, 5xx, timeouts, broken or cut-off answers.

    Everything else (AccessDenied, NoSuchDistribution, validation errors: 4xx) is permanent.
    """
    if isinstance(
        error, DeadlineExceeded | BotocoreConnectionError | HTTPClientError | ResponseParserError
    ):
        return True  # timeouts, resets, unreachable endpoint, an answer too slow to wait for
    if isinstance(error, ClientError):
        status = http_status(error)
        return error_code(error) in TRANSIENT_ERROR_CODES or status >= 500 or status == 429
    # Other SDK-side errors: an answer that could not be parsed or was cut off (botocore's
    # ResponseParserError, IncompleteReadError, ReadTimeoutError...): the next try may get a
    # whole one. Errors of our own making (ParamValidationError) are permanent.
    return isinstance(error, BotoCoreError) and type(error).__name__ not in _PERMANENT_SDK_ERRORS


# botocore errors raised before anything is sent: retrying the same call cannot help.
_PERMANENT_SDK_ERRORS = frozenset(
    {
        "ParamValidationError",
        "NoRegionError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "UnknownServiceError",
        "InvalidEndpointConfigurationError",
        "UnknownEndpointError",
    }
)
