"""Shared-ALB mode: the stack adds its certificate and rule to an existing HTTPS listener."""

from __future__ import annotations

from tests.program.program_harness import (
    ALB_ZONE_ID,
    SHARED_HTTP_LISTENER_ARN,
    SHARED_LB_ARN,
    SHARED_LB_DNS,
    SHARED_LISTENER_ARN,
    run_program,
)

RULE = "aws:lb/listenerRule:ListenerRule"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
LISTENER_CERT = "aws:lb/listenerCertificate:ListenerCertificate"


def test_no_alb_listener_or_security_group_is_created(shared_run):
    types = {r.type for r in shared_run.resources}
    assert not types & {
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/listener:Listener",
        "aws:ec2/securityGroup:SecurityGroup",
    }
    invoked = {token for token, _ in shared_run.invokes}
    assert not invoked & {"aws:ec2/getVpc:getVpc", "aws:ec2/getSubnets:getSubnets"}


def test_certificate_is_added_to_the_shared_listener_once_validated(shared_run):
    listener_cert = shared_run.one(LISTENER_CERT)
    validation = shared_run.one(VALIDATION)
    assert listener_cert.plain["listenerArn"] == SHARED_LISTENER_ARN
    assert listener_cert.plain["certificateArn"] == validation.outputs["certificateArn"]
    assert validation.urn in listener_cert.dependencies


def test_rule_is_added_to_the_shared_listener_after_the_certificate(shared_run):
    rule = shared_run.one(RULE)
    assert rule.plain["listenerArn"] == SHARED_LISTENER_ARN
    assert rule.plain["priority"] == 100
    assert shared_run.one(LISTENER_CERT).urn in rule.dependencies


def test_alias_points_at_the_shared_listeners_load_balancer(shared_run):
    invokes = dict(shared_run.invokes)
    assert invokes["aws:lb/getListener:getListener"]["arn"] == SHARED_LISTENER_ARN
    assert invokes["aws:lb/getLoadBalancer:getLoadBalancer"]["arn"] == SHARED_LB_ARN
    alias = next(
        r for r in shared_run.of_type("aws:route53/record:Record") if r.plain["type"] == "A"
    )
    assert alias.plain["aliases"] == [
        {"name": SHARED_LB_DNS, "zoneId": ALB_ZONE_ID, "evaluateTargetHealth": False}
    ]


def test_outputs_name_the_shared_listener_and_load_balancer(shared_run):
    assert shared_run.outputs["listener_arn"] == SHARED_LISTENER_ARN
    assert shared_run.outputs["load_balancer_dns_name"] == SHARED_LB_DNS


def test_second_site_on_the_same_listener_gets_its_own_priority_host_and_names(shared_run):
    second = run_program(
        {
            "listenerArn": SHARED_LISTENER_ARN,
            "domain": "hooks.second-site.org",
            "hostedZone": "",
            "rulePriority": "110",
            "distributionIds": '["E9SECONDSITE1"]',
        },
        stack="second-site",
    )
    assert second.error is None, second.error
    first_rule, second_rule = shared_run.one(RULE).plain, second.one(RULE).plain
    assert first_rule["listenerArn"] == second_rule["listenerArn"] == SHARED_LISTENER_ARN
    assert (first_rule["priority"], second_rule["priority"]) == (100, 110)
    assert second_rule["conditions"][0] == {"hostHeader": {"values": ["hooks.second-site.org"]}}
    zone_lookup = dict(second.invokes)["aws:route53/getZone:getZone"]
    assert zone_lookup["name"] == "second-site.org"  # default: the domain without its first label
    names = ("function_name", "log_group_name", "secrets_parameter_name")
    assert all(shared_run.outputs[n] != second.outputs[n] for n in names)


def test_a_plain_http_listener_is_refused_before_anything_is_created():
    run = run_program({"listenerArn": SHARED_HTTP_LISTENER_ARN})
    assert "listenerArn" in str(run.error)
    assert "HTTP" in str(run.error)
    assert run.resources  # the program ran: its components were registered
    assert [r.type for r in run.resources if r.type.startswith("aws:")] == []
