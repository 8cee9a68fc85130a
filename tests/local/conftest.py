"""Local stacks for the tests: one per module, stopped (and the environment restored) after it.

moto keeps one state per process, so ``LocalStack.start()`` refuses a second stack while one
runs: a module uses at most one of ``stub_stack`` and ``handler_stack``, and tests that start
their own stack live in a module that uses neither (``test_local_stack_lifecycle.py``).
"""

from __future__ import annotations

import pytest

from local.stack import LocalStack
from tests.local.local_helpers import TEST_JWS_SECRET, TEST_TOKEN, RecordingFunction


@pytest.fixture(scope="module")
def recording_function() -> RecordingFunction:
    return RecordingFunction()


@pytest.fixture(scope="module")
def stub_stack(recording_function):
    """A local stack whose listener calls ``recording_function`` instead of the handler.

    Its queue runner does not poll by itself: nothing moves in the queue unless a test says so.
    """
    with LocalStack.start(
        "dev",
        webhook_token=TEST_TOKEN,
        jws_secret=TEST_JWS_SECRET,
        invoke=recording_function,
        poll_queue=False,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def handler_stack():
    """A local stack running the real ingest and worker in-process; tests drive the queue."""
    with LocalStack.start(
        "dev", webhook_token=TEST_TOKEN, jws_secret=TEST_JWS_SECRET, poll_queue=False
    ) as local:
        yield local
