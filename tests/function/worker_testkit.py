"""Helpers for tests of the worker (``function.worker``): real SQS records from moto, messages.

``sqs_event`` receives real messages from a (moto) queue and shapes them exactly like the event
an SQS event source mapping hands to Lambda, so the receipt handles, receive counts and ARNs the
worker sees are the queue's own. The local stack's stand-in for the mapping and the end-to-end
tests can use it as well.
"""

from __future__ import annotations

import base64
from typing import Any

from function import webhook_settings
from function.invalidation_message import new_message

DEPLOY_ID = "6566f3c2b9a1d40008a7e1f3"
SITE_ID = "4f1b9c2e-8d3a-4e6f-9b7c-2a1d5e8f0c3b"
RECEIVED_AT = "2026-11-28T09:15:00.000Z"


def message_body(
    distribution_id: str,
    deploy_id: str = DEPLOY_ID,
    paths: tuple[str, ...] = ("/*",),
    received_at: str = RECEIVED_AT,
) -> str:
    """A well-formed invalidation message, as the ingest writes it (the same text every time for
    the same arguments)."""
    normalized = tuple(sorted(set(paths)))
    return new_message(
        deploy_id=deploy_id,
        site_id=SITE_ID,
        event="deploy_created",
        context="production",
        distribution_id=distribution_id,
        paths=normalized,
        caller_reference=webhook_settings.caller_reference(deploy_id, normalized),
        received_at=received_at,
    ).to_body()


def queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def _lambda_attribute(value: dict) -> dict:
    """An SQS message attribute as Lambda's event spells it (camelCase, list fields present)."""
    shaped: dict[str, Any] = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": [
            base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])
        ],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return shaped


def lambda_record(message: dict, arn: str, region: str) -> dict:
    """One message from ReceiveMessage (AttributeNames=["All"]) as an SQS event record."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def receive(
    sqs: Any, queue_url: str, max_messages: int = 10, visibility_timeout: int | None = None
) -> list[dict]:
    """Up to ``max_messages`` messages, each once, with all their attributes.

    ``visibility_timeout`` overrides the queue's for these receives: 0 leaves the messages
    visible, so a test can see whether the worker changed their visibility. Then only one
    ReceiveMessage is made (at most 10 messages): a second would receive the same ones again.
    """
    extra = {} if visibility_timeout is None else {"VisibilityTimeout": visibility_timeout}
    rounds = 1 if visibility_timeout == 0 else max_messages
    received: dict[str, dict] = {}
    for _ in range(rounds):  # bounded: at least one new message per round, or stop
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - len(received)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
            **extra,
        ).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in received]
        received.update((m["MessageId"], m) for m in new)
        if not new or len(received) >= max_messages:
            break
    return list(received.values())[:max_messages]


def sqs_event(
    sqs: Any, queue_url: str, max_messages: int = 10, visibility_timeout: int | None = None
) -> dict:
    """An SQS event source mapping's event holding up to ``max_messages`` received messages."""
    arn = queue_arn(sqs, queue_url)
    region = sqs.meta.region_name
    return {
        "Records": [
            lambda_record(message, arn, region)
            for message in receive(sqs, queue_url, max_messages, visibility_timeout)
        ]
    }


def send(sqs: Any, queue_url: str, *bodies: str) -> list[str]:
    """Send each body as one message; their message ids, in order."""
    return [sqs.send_message(QueueUrl=queue_url, MessageBody=b)["MessageId"] for b in bodies]


def dead_letters(sqs: Any, queue_url: str) -> list[dict]:
    """Every message in the (dead-letter) queue as {"body", "attributes"} (string values).

    The messages stay in the queue, invisible for a minute: call it once per test and queue.
    """
    return [
        {
            "body": message["Body"],
            "attributes": {
                name: value.get("StringValue")
                for name, value in message.get("MessageAttributes", {}).items()
            },
        }
        for message in receive(sqs, queue_url, max_messages=100, visibility_timeout=60)
    ]


def listed(answer: dict) -> list[str]:
    """The message ids a worker's answer lists in batchItemFailures, in order."""
    return [item["itemIdentifier"] for item in answer["batchItemFailures"]]


class MotoSqsClock:
    """Moves moto's SQS clock (in-process moto only) so visibility timeouts pass without waiting.

    moto's SQS models read the time through ``unix_time`` and ``unix_time_millis``; this shifts
    both by ``offset_s``. Install it with a pytest ``monkeypatch``, which undoes it.
    """

    def __init__(self, monkeypatch: Any) -> None:
        import moto.sqs.models as sqs_models
        from moto.core.utils import unix_time

        self.offset_s = 0.0
        self._real = unix_time
        monkeypatch.setattr(sqs_models, "unix_time", self._unix_time)
        monkeypatch.setattr(sqs_models, "unix_time_millis", self._unix_time_millis)

    def _unix_time(self, dt: Any = None) -> float:
        return self._real(dt) + (0.0 if dt is not None else self.offset_s)

    def _unix_time_millis(self, dt: Any = None) -> float:
        return self._unix_time(dt) * 1000.0

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds
