"""Shared values and fakes of the local stack's tests (imported by conftest and the tests)."""

from __future__ import annotations

import json
import logging
import threading

TEST_TOKEN = "Local-Test_Token-0123456789abcdef"
TEST_JWS_SECRET = "local-test-jws-secret-of-32-bytes-or-more"


class RecordingFunction:
    """Stands in for ``handler.handler``: records events and answers 202 with the event."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.contexts: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict, context: object) -> dict:
        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
        logging.getLogger("webhook").info("recorded", extra={"path": event.get("path")})
        return {
            "statusCode": 202,
            "statusDescription": "202 Accepted",
            "headers": {"Content-Type": "application/json", "X-Recorded": "yes"},
            "body": json.dumps({"status": "recorded"}),
            "isBase64Encoded": False,
        }
