"""The handler's clients honour AWS_ENDPOINT_URL, as the local stack relies on (moto server)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.server import ThreadedMotoServer

from function import handler, webhook_settings
from tests.function.function_testkit import (
    SECRETS_PARAMETER,
    TOKEN,
    FakeContext,
    reference_for,
    request,
)


@pytest.fixture
def moto_server(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    yield f"http://{host}:{port}"
    handler.reset_state()
    server.stop()


def test_handler_talks_to_the_endpoint_in_aws_endpoint_url(moto_server, monkeypatch):
    ssm = boto3.client("ssm", endpoint_url=moto_server)
    sqs = boto3.client("sqs", endpoint_url=moto_server)
    queue_url = sqs.create_queue(QueueName="endpoint-test")["QueueUrl"]
    ssm.put_parameter(
        Name=SECRETS_PARAMETER,
        Type="SecureString",
        Value=webhook_settings.secrets_value(TOKEN, None),
    )
    monkeypatch.setenv("DISTRIBUTION_IDS", "E2ENDPOINTTEST")
    monkeypatch.setenv("SECRETS_PARAMETER", SECRETS_PARAMETER)
    monkeypatch.setenv("QUEUE_URL", queue_url)
    for name in ("NETLIFY_SITE_ID", "INVALIDATION_PATHS", "DEPLOY_CONTEXTS"):
        monkeypatch.delenv(name, raising=False)
    handler.reset_state()

    response = handler.handler(request(), FakeContext())
    assert response["statusCode"] == 202, response["body"]
    (queued,) = json.loads(response["body"])["invalidations"]
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert message["MessageId"] == queued["message_id"]
    assert json.loads(message["Body"])["caller_reference"] == (reference_for())
