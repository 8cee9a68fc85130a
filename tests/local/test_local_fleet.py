"""Two stacks in one process (``dev`` behind the ALB stand-in, ``dev-url`` behind the function
URL stand-in) on one embedded AWS and one Netlify fake, with the real functions.

Both example stack files configure the same distribution and the same Netlify site: the fleet
seeds the distribution once (shared) and holds one site with both stacks' hooks. Tests that
start fleets of their own are in ``test_local_stack_lifecycle.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

import jwt
import pytest

from function import webhook_settings
from local.fleet import LocalFleet
from tests.local.local_helpers import deploy_body, request, signed_headers
from tests.local.local_helpers import url_request as send

STACKS = ("dev", "dev-url")


@pytest.fixture(scope="module")
def fleet():
    with LocalFleet.start(STACKS, poll_queue=False) as running:
        yield running


@pytest.fixture(autouse=True)
def idle_queues(fleet):
    yield
    for local in fleet:
        local.runner.run_until_idle()


def _depth(local) -> int:
    attributes = local.client("sqs").get_queue_attributes(
        QueueUrl=local.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _notify(local, deploy_id: str) -> int:
    """A signed notification through the stack's own endpoint stand-in; returns the status."""
    body = deploy_body(local.settings.netlify_site_id, deploy_id)
    headers = signed_headers_for(local, body)
    if local.settings.uses_function_url:
        target = f"{local.settings.webhook_path}?{_token_query(local)}"
        status, _, _ = send(local, target=target, body=body, headers=list(headers.items()))
    else:
        status, _, _, _ = request(local, body=body, headers=headers, query=_token_query(local))
    return status


def _token_query(local) -> str:
    return f"token={local.settings.webhook_token.reveal()}"


def signed_headers_for(local, body: bytes) -> dict[str, str]:
    """``signed_headers`` with the stack's own (generated) JWS secret."""
    headers = signed_headers(body)
    claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
    headers["X-Webhook-Signature"] = jwt.encode(claims, local.jws_secret, algorithm="HS256")
    return headers


def test_the_stacks_share_one_embedded_aws_with_names_of_their_own(fleet):
    dev, url = fleet["dev"], fleet["dev-url"]
    assert dev.endpoint_url == url.endpoint_url == fleet.endpoint_url
    assert dev.account_id == url.account_id
    assert (
        len({dev.queue_url, url.queue_url, dev.dead_letter_queue_url, url.dead_letter_queue_url})
        == 4
    )
    listed = dev.client("sqs").list_queues()["QueueUrls"]
    assert sorted(listed) == sorted(
        [dev.queue_url, url.queue_url, dev.dead_letter_queue_url, url.dead_letter_queue_url]
    )
    assert dev.secrets_parameter_name != url.secrets_parameter_name
    functions = {f["FunctionName"] for f in dev.client("lambda").list_functions()["Functions"]}
    assert functions == {
        name
        for local in fleet
        for name in (
            local.function_name,
            local.worker_function_name,
            local.reconciler_function_name,
        )
    }


def test_a_distribution_both_stack_files_name_is_seeded_once_and_shared(fleet):
    dev, url = fleet["dev"], fleet["dev-url"]
    assert dev.distribution_ids == url.distribution_ids
    listed = dev.client("cloudfront").list_distributions()["DistributionList"]["Items"]
    assert [item["Id"] for item in listed] == list(dev.distribution_ids)
    assert (dev.shared_distribution_ids, url.shared_distribution_ids) == ((), dev.distribution_ids)


def test_the_fleet_file_holds_each_stacks_runbook_environment(fleet):
    path = fleet.fleet_file
    assert path is not None and os.environ["NCW_FLEET_FILE"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert list(document) == list(STACKS)
    for local in fleet:
        assert document[local.stack] == local.stack_environment()
        assert local.environment() == {**document[local.stack], "NCW_FLEET_FILE": str(path)}
    assert document["dev"]["NCW_ENDPOINT"] == "alb"
    assert document["dev-url"]["NCW_ENDPOINT"] == "functionUrl"
    assert document["dev"]["NCW_WEBHOOK_URL"] != document["dev-url"]["NCW_WEBHOOK_URL"]
    # The fleet view's own environment: the local AWS, the file, Netlify; no stack's NCW_*.
    shared = fleet.environment()
    assert shared["NCW_FLEET_FILE"] == str(path)
    assert shared["NETLIFY_API_URL"] == fleet.netlify.api_url
    assert "NCW_STACK" not in shared and "NCW_STACK" not in os.environ


def test_each_stacks_env_file_exports_its_environment(fleet):
    for local in fleet:
        text = fleet.env_files[local.stack].read_text()
        assert f"export NCW_STACK={local.stack}\n" in text
        assert stat.S_IMODE(fleet.env_files[local.stack].stat().st_mode) == 0o600


def test_one_netlify_site_holds_both_stacks_hooks(fleet):
    site_id = fleet["dev"].settings.netlify_site_id
    assert fleet["dev-url"].settings.netlify_site_id == site_id
    hooks = fleet.netlify.hooks(site_id)
    by_stack = {
        local.stack: sorted(
            hook["event"] for hook in hooks if hook["data"]["url"] == local.webhook_url
        )
        for local in fleet
    }
    assert by_stack == {stack: ["deploy_created", "deploy_restored"] for stack in STACKS}
    assert len(hooks) == 4


def test_each_ingest_queues_to_its_own_stack_whichever_ran_before(fleet):
    dev, url = fleet["dev"], fleet["dev-url"]
    # Alternating: each switch is a cold start of the shared function module with the other
    # stack's settings (local.lambda_runtime); a stale container would queue to the wrong stack.
    assert _notify(dev, "fleet-a") == 202
    assert (_depth(dev), _depth(url)) == (1, 0)
    assert _notify(url, "fleet-b") == 202
    assert (_depth(dev), _depth(url)) == (1, 1)
    assert _notify(dev, "fleet-c") == 202
    assert (_depth(dev), _depth(url)) == (2, 1)
    worked = {local.stack: local.runner.run_until_idle() for local in fleet}
    deploys = {
        stack: sorted(json.loads(r.body)["deploy_id"] for batch in batches for r in batch.records)
        for stack, batches in worked.items()
    }
    assert deploys == {"dev": ["fleet-a", "fleet-c"], "dev-url": ["fleet-b"]}


def test_one_publish_notifies_both_stacks_and_each_worker_invalidates(fleet):
    site_id = fleet["dev"].settings.netlify_site_id
    deploy = fleet.netlify.publish(site_id)
    deliveries = fleet.netlify.notify(site_id, "deploy_created", deploy)
    assert sorted((d.endpoint, d.status) for d in deliveries) == sorted(
        (local.webhook_endpoint, 202) for local in fleet
    )
    for local in fleet:
        local.runner.run_until_idle()
    cloudfront = fleet["dev"].client("cloudfront")
    dist_id = fleet["dev"].distribution_ids[0]
    items = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]["Items"]
    references = [
        cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"][
            "InvalidationBatch"
        ]["CallerReference"]
        for item in items
    ]
    prefix = webhook_settings.reference_prefix(deploy["id"])
    # The same notification gives the same reference: CloudFront would keep one of the two.
    mine = [ref for ref in references if ref.startswith(prefix)]
    assert len(mine) == 2 and len(set(mine)) == 1


def test_each_reconciler_judges_its_own_hooks(fleet):
    dev, url = fleet["dev"], fleet["dev-url"]
    fleet.netlify.disable_hook(dev.hook_ids["deploy_created"])
    dev_run, url_run = dev.run_reconciler(), url.run_reconciler()
    assert dev_run["hooks"] == {"deploy_created": "disabled", "deploy_restored": "ok"}
    assert url_run["hooks"] == {"deploy_created": "ok", "deploy_restored": "ok"}
    assert (dev_run["stack"], url_run["stack"]) == ("dev", "dev-url")
