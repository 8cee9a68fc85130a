"""The function's test world: moto's CloudFront, SSM and SQS, the settings in the environment."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from function import handler, webhook_settings
from tests.function.function_testkit import (
    DISTRIBUTION_CONFIG,
    JWS_SECRET,
    SECRETS_PARAMETER,
    TOKEN,
    FakeContext,
)


@dataclass
class World:
    """moto's AWS as the function sees it, plus ways to change the function's configuration."""

    cloudfront: Any
    ssm: Any
    distribution_ids: tuple[str, ...]
    monkeypatch: pytest.MonkeyPatch
    sqs: Any = None
    queue_url: str = ""

    def configure(self, **environment: str | None) -> None:
        """Change the function's environment and start a new container."""
        for name, value in environment.items():
            if value is None:
                self.monkeypatch.delenv(name, raising=False)
            else:
                self.monkeypatch.setenv(name, value)
        handler.reset_state(keep_clients=True)

    def put_secrets(self, token: str = TOKEN, jws_secret: str | None = JWS_SECRET) -> None:
        self.ssm.put_parameter(
            Name=SECRETS_PARAMETER,
            Type="SecureString",
            Value=webhook_settings.secrets_value(token, jws_secret),
            Overwrite=True,
        )
        handler.reset_state(keep_clients=True)

    def invalidations(self, distribution_id: str) -> list[dict]:
        """Every invalidation CloudFront holds for the distribution, in full."""
        listing = self.cloudfront.list_invalidations(DistributionId=distribution_id)
        return [
            self.cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])[
                "Invalidation"
            ]
            for item in listing["InvalidationList"].get("Items", [])
        ]

    def queued(self) -> list[dict]:
        """Every message in the ingest's queue, decoded, oldest first; they stay in the queue
        invisible for a minute, so call it once per test."""
        bodies: list[dict] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not batch:
                return bodies
            bodies.extend(json.loads(message["Body"]) for message in batch)

    def queued_count(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def invalidation_count(self) -> int:
        return sum(
            self.cloudfront.list_invalidations(DistributionId=d)["InvalidationList"]["Quantity"]
            for d in self.distribution_ids
        )


@pytest.fixture
def context(monkeypatch) -> FakeContext:
    """A Lambda context; the handler's backoff sleeps advance its clock instead of waiting."""
    fake = FakeContext()
    monkeypatch.setattr(handler, "_sleep", fake.sleep)
    return fake


@pytest.fixture(scope="module")
def aws():
    """moto's AWS for one test module, with the test's own clients (made once: they are slow)."""
    with mock_aws():
        yield (
            boto3.client("cloudfront"),
            boto3.client("ssm", region_name="us-east-1"),
            boto3.client("sqs", region_name="us-east-1"),
        )
        handler.reset_state()  # no client made inside the mock outlives it


@pytest.fixture
def world(aws, monkeypatch, context):
    """Two new distributions, a new queue, the secrets parameter (token + JWS secret) and the
    settings naming them; a fresh container (settings and secrets) for every test."""
    cloudfront, ssm, sqs = aws
    ids = tuple(
        cloudfront.create_distribution(
            DistributionConfig={**DISTRIBUTION_CONFIG, "CallerReference": uuid.uuid4().hex}
        )["Distribution"]["Id"]
        for _ in range(2)
    )
    queue_url = sqs.create_queue(QueueName=f"invalidations-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    built = World(cloudfront, ssm, ids, monkeypatch, sqs, queue_url)
    for name in ("NETLIFY_SITE_ID", "INVALIDATION_PATHS", "DEPLOY_CONTEXTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL", raising=False)
    built.put_secrets()
    built.configure(
        DISTRIBUTION_IDS=",".join(ids), SECRETS_PARAMETER=SECRETS_PARAMETER, QUEUE_URL=queue_url
    )
    yield built
    handler.reset_state(keep_clients=True)
