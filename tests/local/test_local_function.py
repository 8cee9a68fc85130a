"""The real ingest behind the ALB stand-in and the real worker behind the queue runner."""

from __future__ import annotations

import time
import urllib.parse

from function import webhook_settings
from tests.local.local_helpers import TEST_TOKEN, deploy_body, request, signed_headers


def test_a_signed_notification_is_invalidated_once_the_worker_ran(handler_stack):
    deploy_id = f"dep{int(time.time() * 1000)}"
    body = deploy_body(handler_stack.settings.netlify_site_id, deploy_id)
    status, _, _, answer = request(handler_stack, body=body, headers=signed_headers(body))
    assert 200 <= status < 300, answer
    handler_stack.runner.run_until_idle()

    prefix = webhook_settings.reference_prefix(deploy_id)
    cloudfront = handler_stack.client("cloudfront")
    for dist_id in handler_stack.distribution_ids:
        items = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]["Items"]
        references = [
            cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"][
                "InvalidationBatch"
            ]["CallerReference"]
            for item in items
        ]
        assert len([ref for ref in references if ref.startswith(prefix)]) == 1


def test_a_token_the_alb_lets_through_in_other_case_is_refused_by_the_function(handler_stack):
    body = deploy_body(handler_stack.settings.netlify_site_id, "dep-case")
    status, _, _, _ = request(
        handler_stack,
        query=f"token={urllib.parse.quote(TEST_TOKEN.swapcase())}",
        body=body,
        headers=signed_headers(body),
    )
    assert status in (401, 403)  # past the ALB rule (case-insensitive), stopped by the function
