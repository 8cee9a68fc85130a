"""The handler's clients honour AWS_ENDPOINT_URL, as the local stack relies on (moto server)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.server import ThreadedMotoServer

from function import handler, webhook_settings
from tests.function.function_testkit import (
    DISTRIBUTION_CONFIG,
    FIXTURE_DEPLOY_ID,
    SECRETS_PARAMETER,
    TOKEN,
    FakeContext,
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
    cloudfront = boto3.client("cloudfront", endpoint_url=moto_server)
    ssm = boto3.client("ssm", endpoint_url=moto_server)
    distribution_id = cloudfront.create_distribution(
        DistributionConfig={**DISTRIBUTION_CONFIG, "CallerReference": "endpoint-test"}
    )["Distribution"]["Id"]
    ssm.put_parameter(
        Name=SECRETS_PARAMETER,
        Type="SecureString",
        Value=webhook_settings.secrets_value(TOKEN, None),
    )
    monkeypatch.setenv("DISTRIBUTION_IDS", distribution_id)
    monkeypatch.setenv("SECRETS_PARAMETER", SECRETS_PARAMETER)
    for name in ("NETLIFY_SITE_ID", "INVALIDATION_PATHS", "DEPLOY_CONTEXTS"):
        monkeypatch.delenv(name, raising=False)
    handler.reset_state()

    response = handler.handler(request(), FakeContext())
    assert response["statusCode"] == 202, response["body"]
    invalidation_id = json.loads(response["body"])["invalidations"][0]["invalidation_id"]
    held = cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)
    assert held["Invalidation"]["InvalidationBatch"]["CallerReference"] == (
        webhook_settings.caller_reference(FIXTURE_DEPLOY_ID, ["/*"])
    )
