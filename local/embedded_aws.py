"""The embedded AWS: one moto server on 127.0.0.1 (free port), one per process.

moto keeps its backends in module globals, so every moto server of a process shares one state,
and starting one resets it: ``EmbeddedAws.start()`` claims the process and refuses a second
embedded AWS while one runs (``LocalStackAlreadyRunning``). One embedded AWS is one account:
a single local stack (``local.stack``) or a fleet of them (``local.fleet``) seeds it.

While it runs, the process environment points boto3 at it (``AWS_ENDPOINT_URL``, fake
credentials, a region) and holds none of the variables that could reach a real account
(``AWS_PROFILE``...); ``stop()`` restores the environment as it was.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

DEFAULT_REGION = "us-east-1"
# Fake credentials: the local stack never talks to a real AWS account.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Variables that could point boto3 at a real account; removed while the embedded AWS runs.
REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_log = logging.getLogger("local.embedded_aws")

_running_lock = threading.Lock()
_running: EmbeddedAws | None = None


class LocalStackAlreadyRunning(RuntimeError):
    """A local stack (or fleet) was started while another one runs in this process."""


class EmbeddedAws:
    """A running moto server; ``start()`` it, ``stop()`` it (or use ``with``)."""

    def __init__(self, owner: str, region: str = DEFAULT_REGION) -> None:
        self.owner = owner  # what the process runs, for the refusal's message
        self.region = region  # the process environment's region
        self.endpoint_url = ""
        self.account_id = ""
        self._server: ThreadedMotoServer | None = None
        self._werkzeug_level: int | None = None
        self._saved_environ: dict[str, str | None] = {}

    @classmethod
    def start(cls, owner: str, region: str = DEFAULT_REGION) -> EmbeddedAws:
        """Claim the process, start moto and empty it; on failure undo everything and raise."""
        aws = cls(owner, region)
        _claim(aws)
        try:
            aws._start()
        except BaseException:
            aws.stop()
            raise
        return aws

    def _start(self) -> None:
        for name in REAL_AWS_VARIABLES:  # nothing may reach a real account from here on
            self._saved_environ[name] = os.environ.pop(name, None)
        werkzeug = logging.getLogger("werkzeug")  # moto's server logs every request at INFO
        self._werkzeug_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        for name, value in self.environment(self.region).items():
            self._saved_environ.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        self.reset()  # the backends are per process: start from a clean account
        self.account_id = self.client("sts").get_caller_identity()["Account"]

    def stop(self) -> None:
        """Empty moto for whoever comes next, stop the server, release the process. Safe twice."""
        try:
            if self._server is not None:
                try:
                    self.reset()
                except Exception as error:  # a failed reset must not leave the server behind
                    _log.warning("could not reset moto at %s: %s", self.endpoint_url, error)
                finally:
                    self._server.stop()
                    self._server = None
        finally:
            if self._werkzeug_level is not None:
                logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
                self._werkzeug_level = None
            saved, self._saved_environ = self._saved_environ, {}
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _release(self)

    def __enter__(self) -> EmbeddedAws:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """moto's ``/moto-api/reset``: every backend back to empty."""
        url = f"{self.endpoint_url}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 (local http URL)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local)
            response.read()

    def client(self, service: str, region: str = DEFAULT_REGION) -> Any:
        """A boto3 client for the embedded AWS (explicit endpoint and fake credentials)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def environment(self, region: str) -> dict[str, str]:
        """What points boto3 (anywhere: a function, a kernel) at the embedded AWS in ``region``."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            **FAKE_CREDENTIALS,
        }


def _claim(aws: EmbeddedAws) -> None:
    global _running
    with _running_lock:
        if _running is not None:
            raise LocalStackAlreadyRunning(
                "a local stack is already running in this process "
                f"({_running.owner}, moto at {_running.endpoint_url or 'starting'}); "
                "moto keeps one state per process, so stop it before starting another"
            )
        _running = aws


def _release(aws: EmbeddedAws) -> None:
    global _running
    with _running_lock:
        if _running is aws:
            _running = None
