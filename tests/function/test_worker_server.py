"""The worker against a moto server reached through AWS_ENDPOINT_URL, as the local stack runs it.

Records name their queue by ARN; the worker turns it into the AWS form of the queue URL
(``https://sqs.<region>.amazonaws.com/<account>/<name>``), while the server hands out
``http://127.0.0.1:<port>/<account>/<name>``. botocore sends SQS's JSON requests to the client's
endpoint, not to the URL's host, and moto finds the queue by the URL's last segment, so the
visibility change reaches the server's queue all the same.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from function import webhook_settings, worker
from tests.function.function_testkit import DISTRIBUTION_CONFIG, FakeContext
from tests.function.worker_testkit import dead_letters, listed, message_body, receive, sqs_event


@pytest.fixture
def moto_server(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setattr(worker, "_jitter", lambda: 0.0)
    yield f"http://{host}:{port}"
    worker.reset_state()
    server.stop()


class BusyCloudFront:
    """CloudFront refusing one distribution as busy; the others reach the server."""

    def __init__(self, real: Any, busy: str) -> None:
        self.real = real
        self.busy = busy

    def create_invalidation(self, **kwargs: Any) -> Any:
        if kwargs["DistributionId"] == self.busy:
            raise ClientError(
                {
                    "Error": {"Code": "TooManyInvalidationsInProgress", "Message": "busy"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "CreateInvalidation",
            )
        return self.real.create_invalidation(**kwargs)


def test_worker_invalidates_pushes_back_and_dead_letters_on_a_moto_server(moto_server, monkeypatch):
    cloudfront = boto3.client("cloudfront", endpoint_url=moto_server)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    good, busy = (
        cloudfront.create_distribution(
            DistributionConfig={**DISTRIBUTION_CONFIG, "CallerReference": uuid.uuid4().hex}
        )["Distribution"]["Id"]
        for _ in range(2)
    )
    queue_url = sqs.create_queue(QueueName="worker-server-queue")["QueueUrl"]
    dead_letter_url = sqs.create_queue(QueueName="worker-server-dead-letters")["QueueUrl"]
    assert queue_url.startswith(moto_server)  # not the URL the worker derives from the ARN
    monkeypatch.setenv("DISTRIBUTION_IDS", f"{good},{busy}")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dead_letter_url)
    worker.reset_state()
    fake = BusyCloudFront(worker.cloudfront_client(), busy)
    monkeypatch.setattr(worker, "cloudfront_client", lambda: fake)

    good_body, busy_body = message_body(good), message_body(busy)
    for body in (good_body, busy_body, "not JSON"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    event = sqs_event(sqs, queue_url, visibility_timeout=0)
    records = {r["body"]: r for r in event["Records"]}
    derived = webhook_settings.queue_url_from_arn(records["not JSON"]["eventSourceARN"])
    assert derived == "https://sqs.us-east-1.amazonaws.com/123456789012/worker-server-queue"

    answer = worker.handler(event, FakeContext(remaining_ms=120_000))

    assert listed(answer) == [records[busy_body]["messageId"]]
    (invalidation,) = cloudfront.list_invalidations(DistributionId=good)["InvalidationList"][
        "Items"
    ]
    assert invalidation["Status"].upper() == "COMPLETED"
    assert [d["body"] for d in dead_letters(sqs, dead_letter_url)] == ["not JSON"]
    # The busy one was pushed back on the server's queue; the others stay visible (the event
    # source mapping would delete them).
    visible = {m["Body"] for m in receive(sqs, queue_url, visibility_timeout=0)}
    assert visible == {good_body, "not JSON"}
