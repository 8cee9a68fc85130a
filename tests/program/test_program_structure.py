"""Components own every resource; every taggable resource carries the site's tags."""

from __future__ import annotations

import importlib
import inspect

import pytest

TAGS = {"project": "netlify-cloudfront-webhook", "stack": "dev", "site": "lambda.example.com"}
COMPONENT_TYPES = {
    "ncw:site:Webhook",
    "ncw:site:Function",
    "ncw:site:Edge",
    "ncw:site:Routing",
    "ncw:site:Pipeline",
    "ncw:site:Alarms",
}


def _args_class(type_token: str):
    """``aws:lb/listenerRule:ListenerRule`` -> ``pulumi_aws.lb.ListenerRuleArgs``."""
    _, module_path, class_name = type_token.split(":")
    module = module_path.split("/")[0]
    module = {"lambda": "lambda_"}.get(module, module)
    return getattr(importlib.import_module(f"pulumi_aws.{module}"), f"{class_name}Args")


def _taggable(type_token: str) -> bool:
    return "tags" in inspect.signature(_args_class(type_token).__init__).parameters


@pytest.mark.parametrize("run_name", ["own_alb_run", "shared_run"])
def test_every_aws_resource_is_a_child_of_a_site_component(request, run_name):
    run = request.getfixturevalue(run_name)
    components = {r.urn: r.type for r in run.resources if not r.custom}
    assert set(components.values()) == COMPONENT_TYPES
    for resource in run.resources:
        if resource.custom:
            assert components.get(resource.parent) in COMPONENT_TYPES - {"ncw:site:Webhook"}


def test_child_names_derive_from_their_component_name(own_alb_run):
    by_urn = {r.urn: r for r in own_alb_run.resources}
    for resource in own_alb_run.resources:
        parent = by_urn.get(resource.parent)
        if parent is not None:
            assert resource.name.startswith(parent.name + "-")


@pytest.mark.parametrize("run_name", ["own_alb_run", "shared_run"])
def test_every_taggable_resource_carries_project_stack_and_site_tags(request, run_name):
    run = request.getfixturevalue(run_name)
    taggable = [r for r in run.resources if r.custom and _taggable(r.type)]
    assert len(taggable) >= 5
    untagged = [r.name for r in taggable if r.plain.get("tags") != TAGS]
    assert untagged == []


def test_own_alb_mode_tags_the_alb_its_listeners_and_security_group(own_alb_run):
    tagged_types = {r.type for r in own_alb_run.resources if r.plain.get("tags") == TAGS}
    assert {
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/listener:Listener",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:lb/listenerRule:ListenerRule",
        "aws:lambda/function:Function",
    } <= tagged_types
