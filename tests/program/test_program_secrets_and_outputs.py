"""Secrets stay secret; the stack outputs are exactly the documented ones."""

from __future__ import annotations

import pytest

from infra.netlify_hook import EVENTS
from tests.program.program_harness import TEST_JWS_SECRET, TEST_TOKEN, plain_strings

OUTPUT_NAMES = {
    "endpoint",
    "webhook_url",
    "netlify_hooks",
    "function_name",
    "function_arn",
    "log_group_name",
    "secrets_parameter_name",
    "invalidation_paths",
    "distribution_ids",
    "listener_arn",
    "load_balancer_dns_name",
    "queue_url",
    "dead_letter_queue_url",
    "worker_function_name",
    "worker_log_group_name",
    "alarm_topic_arn",
    "region",
}


def _leaks(value) -> list[str]:
    return [s for s in plain_strings(value) if TEST_TOKEN in s or TEST_JWS_SECRET in s]


@pytest.mark.parametrize("run_name", ["own_alb_run", "shared_run", "unsigned_run"])
def test_no_resource_input_holds_a_secret_unwrapped(request, run_name):
    run = request.getfixturevalue(run_name)
    leaks = {r.name: _leaks(r.inputs) for r in run.resources if _leaks(r.inputs)}
    assert leaks == {}


def test_secrets_do_reach_the_resources_that_need_them_wrapped(own_alb_run):
    holders = {
        r.type
        for r in own_alb_run.resources
        if any(TEST_TOKEN in s for s in plain_strings(r.plain))  # .plain: wrappers removed
    }
    assert holders == {"aws:ssm/parameter:Parameter", "aws:lb/listenerRule:ListenerRule"}


@pytest.mark.parametrize("run_name", ["own_alb_run", "shared_run"])
def test_outputs_are_exactly_the_documented_ones(request, run_name):
    assert set(request.getfixturevalue(run_name).outputs) == OUTPUT_NAMES


def test_webhook_url_and_netlify_hooks_are_secret_outputs(own_alb_run):
    assert own_alb_run.secret_outputs == {"webhook_url", "netlify_hooks"}


def test_other_outputs_never_contain_a_secret(own_alb_run):
    public = {k: v for k, v in own_alb_run.outputs.items() if k not in own_alb_run.secret_outputs}
    assert _leaks(public) == []


def test_webhook_url_carries_domain_path_and_token(own_alb_run):
    assert own_alb_run.outputs["webhook_url"] == (
        f"https://lambda.example.com/webhooks/netlify?token={TEST_TOKEN}"
    )


def test_netlify_hooks_are_one_hooks_api_body_per_event_with_the_signature_secret(own_alb_run):
    assert EVENTS == ("deploy_created", "deploy_restored")
    assert own_alb_run.outputs["netlify_hooks"] == [
        {
            "type": "url",
            "event": event,
            "data": {
                "url": own_alb_run.outputs["webhook_url"],
                "signature_secret": TEST_JWS_SECRET,
            },
        }
        for event in EVENTS
    ]


def test_netlify_hooks_without_jws_secret_have_no_signature_secret(unsigned_run):
    hooks = unsigned_run.outputs["netlify_hooks"]
    assert [hook["event"] for hook in hooks] == list(EVENTS)
    assert [hook["data"] for hook in hooks] == [{"url": unsigned_run.outputs["webhook_url"]}] * 2
    assert unsigned_run.secret_outputs == {"webhook_url", "netlify_hooks"}


def test_endpoint_output_says_alb(own_alb_run, shared_run):
    assert own_alb_run.outputs["endpoint"] == "alb"
    assert shared_run.outputs["endpoint"] == "alb"


def test_plain_outputs_have_their_documented_shapes(own_alb_run):
    outputs = own_alb_run.outputs
    assert outputs["distribution_ids"] == ["E2EXAMPLE1ABCD"]
    assert outputs["invalidation_paths"] == ["/*"]
    assert outputs["function_arn"].endswith(":function:" + outputs["function_name"])
    assert outputs["log_group_name"] == "/aws/lambda/" + outputs["function_name"]
    assert outputs["secrets_parameter_name"].startswith("/")
