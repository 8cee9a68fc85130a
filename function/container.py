"""Per-container state shared by every function of the package: settings and boto3 clients.

A Lambda container reads its environment once: the first invocation validates it and every later
one reuses the result. A bad setting is kept too, and logged once per container: every request
or record fails the same way until the setting is fixed (a fix means new containers anyway).
Clients are made once per container as well (about 0.1 s each).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import boto3
from botocore.config import Config

from . import lambda_logging
from .aws_calls import call_with_deadline
from .webhook_settings import FunctionSecrets, SettingsError, parse_secrets

T = TypeVar("T")


class SettingsOnce(Generic[T]):
    """``load(os.environ)``'s result, or the SettingsError it raised, computed on first use."""

    def __init__(self, load: Callable[[Mapping[str, str]], T], logger: logging.Logger) -> None:
        self._load = load
        self._logger = logger
        self._value: T | None = None
        self._error: SettingsError | None = None

    def get(self) -> T | SettingsError:
        if self._value is not None:
            return self._value
        if self._error is None:
            try:
                self._value = self._load(os.environ)
                return self._value
            except SettingsError as error:
                self._error = error
                self._logger.error(
                    "bad setting %s: %s",
                    error.variable,
                    error.problem,
                    extra={"outcome": "misconfigured", "variable": error.variable},
                )
        return self._error


def cached_client(
    clients: dict[str, Any], service: str, config: Config, logger: logging.Logger
) -> Any:
    """``clients[service]``, made on first use with ``config``.

    Call it in the handler's thread, never inside ``call_with_deadline``: boto3's default
    session is not thread-safe. boto3 honours ``AWS_ENDPOINT_URL`` (and
    ``AWS_ENDPOINT_URL_<SERVICE>``) by itself. Making a client can create the SDK's loggers, so
    they are clamped again.
    """
    if service not in clients:
        lambda_logging.configure(logger)
        clients[service] = boto3.client(service, config=config)
    return clients[service]


def read_secrets(client: Any, parameter: str, seconds: float) -> FunctionSecrets:
    """The site's secrets: ``GetParameter`` with decryption under a hard deadline, parsed.

    Raises what the call raises (``aws_calls.AWS_ERRORS``) or a SettingsError naming
    ``SECRETS_PARAMETER`` (never quoting the value). ``client`` is made by the caller, in the
    handler's thread.
    """
    response = call_with_deadline(
        "GetParameter",
        seconds,
        lambda: client.get_parameter(Name=parameter, WithDecryption=True),
    )
    return parse_secrets(response["Parameter"]["Value"])
