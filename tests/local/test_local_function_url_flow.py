"""The real ingest behind the function URL stand-in and the real worker behind the queue runner.

``Pulumi.dev-url.yaml`` (``endpoint: functionUrl``): no rule in front, so the ingest itself
answers 404 for any path other than its ``WEBHOOK_PATH``.
"""

from __future__ import annotations

import json

import pytest

from function import webhook_settings
from local.stack import LocalStack
from tests.local.local_helpers import TEST_JWS_SECRET, TEST_TOKEN, deploy_body, signed_headers
from tests.local.local_helpers import url_request as send


@pytest.fixture(scope="module")
def local():
    with LocalStack.start(
        "dev-url", webhook_token=TEST_TOKEN, jws_secret=TEST_JWS_SECRET, poll_queue=False
    ) as stack:
        yield stack


def _depth(local) -> int:
    attributes = local.client("sqs").get_queue_attributes(
        QueueUrl=local.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _references(local, dist_id: str) -> list[str]:
    cloudfront = local.client("cloudfront")
    items = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]
    return [
        cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"][
            "InvalidationBatch"
        ]["CallerReference"]
        for item in items.get("Items") or []
    ]


def test_a_signed_notification_through_the_url_is_queued_then_invalidated(local):
    body = deploy_body(local.settings.netlify_site_id, "url-deploy-1")
    status, _, answer = send(local, body=body, headers=list(signed_headers(body).items()))
    assert status == 202, answer
    assert json.loads(answer)["status"] == "queued"
    assert _depth(local) == len(local.distribution_ids)
    local.runner.run_until_idle()
    assert _depth(local) == 0
    prefix = webhook_settings.reference_prefix("url-deploy-1")
    for dist_id in local.distribution_ids:
        assert len([ref for ref in _references(local, dist_id) if ref.startswith(prefix)]) == 1


@pytest.mark.parametrize("path", ["/", "/webhooks/other", "/webhooks/netlify/"])
def test_another_path_is_answered_404_by_the_ingest_and_queues_nothing(local, path):
    body = deploy_body(local.settings.netlify_site_id, "url-deploy-elsewhere")
    status, headers, _ = send(
        local,
        target=f"{path}?token={TEST_TOKEN}",
        body=body,
        headers=list(signed_headers(body).items()),
    )
    assert status == 404
    assert dict(headers)["Content-Type"] == "application/json"  # the ingest's answer
    assert _depth(local) == 0


def test_an_unsigned_notification_is_refused_by_the_ingest(local):
    status, _, answer = send(local, body=b"{}", headers=[("Content-Type", "application/json")])
    assert status == 401, answer
    assert _depth(local) == 0


def test_netlify_delivers_to_the_function_url_without_a_host_override(local):
    assert local.netlify is not None
    site_id = local.settings.netlify_site_id
    deploy = local.netlify.publish(site_id)
    deliveries = local.netlify.notify(site_id, "deploy_created", deploy)
    assert [(d.endpoint, d.status) for d in deliveries] == [(local.webhook_endpoint, 202)]
    assert deliveries[0].body["deploy_id"] == deploy["id"]
    local.runner.run_until_idle()
    prefix = webhook_settings.reference_prefix(deploy["id"])
    for dist_id in local.distribution_ids:
        assert [ref for ref in _references(local, dist_id) if ref.startswith(prefix)]
