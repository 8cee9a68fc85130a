"""Own-ALB mode: ALB, listeners, certificate chain, DNS, and the route to the function."""

from __future__ import annotations

import json

from infra.rule import WebhookRule
from infra.settings import parse_site_config
from infra.stack_files import load_stack_files
from tests.program.program_harness import (
    ALB_ZONE_ID,
    DEFAULT_SUBNETS,
    DEFAULT_VPC_ID,
    TEST_TOKEN,
    ZONE_ID,
    run_program,
)

LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
SG = "aws:ec2/securityGroup:SecurityGroup"
CERT = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
PERMISSION = "aws:lambda/permission:Permission"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
RULE = "aws:lb/listenerRule:ListenerRule"
FUNCTION = "aws:lambda/function:Function"


def _listener(run, port: int):
    return next(r for r in run.of_type(LISTENER) if r.plain["port"] == port)


def _record(run, record_type: str):
    return next(r for r in run.of_type(RECORD) if r.plain["type"] == record_type)


def test_alb_is_internet_facing_in_the_default_vpc_subnets(own_alb_run):
    lb = own_alb_run.one(LB).plain
    assert lb["loadBalancerType"] == "application"
    assert lb["internal"] is False
    assert lb["dropInvalidHeaderFields"] is True
    assert lb["subnets"] == DEFAULT_SUBNETS
    assert lb["securityGroups"] == [own_alb_run.one(SG).id]
    invokes = dict(own_alb_run.invokes)
    assert invokes["aws:ec2/getVpc:getVpc"]["default"] is True
    assert invokes["aws:ec2/getSubnets:getSubnets"]["filters"] == [
        {"name": "vpc-id", "values": [DEFAULT_VPC_ID]},
        {"name": "default-for-az", "values": ["true"]},
    ]


def test_security_group_opens_80_and_443_and_no_egress(own_alb_run):
    sg = own_alb_run.one(SG).plain
    assert sg["vpcId"] == DEFAULT_VPC_ID
    assert sorted((r["fromPort"], r["toPort"], r["protocol"]) for r in sg["ingress"]) == [
        (80, 80, "tcp"),
        (443, 443, "tcp"),
    ]
    assert all(r["cidrBlocks"] == ["0.0.0.0/0"] for r in sg["ingress"])
    assert sg["egress"] == []  # Lambda targets are invoked without a network connection


def test_http_listener_redirects_to_https_permanently(own_alb_run):
    http = _listener(own_alb_run, 80).plain
    assert http["protocol"] == "HTTP"
    assert http["loadBalancerArn"] == own_alb_run.one(LB).outputs["arn"]
    assert http["defaultActions"] == [
        {
            "type": "redirect",
            "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"},
        }
    ]


def test_https_listener_uses_tls13_policy_validated_cert_and_404_default(own_alb_run):
    https = _listener(own_alb_run, 443)
    validation = own_alb_run.one(VALIDATION)
    assert https.plain["protocol"] == "HTTPS"
    assert https.plain["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https.plain["certificateArn"] == validation.outputs["certificateArn"]
    assert validation.urn in https.dependencies  # waits for the certificate to be issued
    assert https.plain["defaultActions"] == [
        {
            "type": "fixed-response",
            "fixedResponse": {
                "contentType": "text/plain",
                "messageBody": "Not found",
                "statusCode": "404",
            },
        }
    ]
    assert own_alb_run.outputs["listener_arn"] == https.outputs["arn"]


def test_certificate_is_dns_validated_through_the_hosted_zone(own_alb_run):
    cert = own_alb_run.one(CERT)
    assert cert.plain["domainName"] == "lambda.example.com"
    assert cert.plain["validationMethod"] == "DNS"
    option = cert.outputs["domainValidationOptions"][0]
    record = _record(own_alb_run, "CNAME").plain
    assert record["zoneId"] == ZONE_ID
    assert record["name"] == option["resourceRecordName"]
    assert record["records"] == [option["resourceRecordValue"]]
    validation = own_alb_run.one(VALIDATION).plain
    assert validation["certificateArn"] == cert.outputs["arn"]
    assert validation["validationRecordFqdns"] == [_record(own_alb_run, "CNAME").outputs["fqdn"]]
    zone_lookup = dict(own_alb_run.invokes)["aws:route53/getZone:getZone"]
    assert zone_lookup == {"name": "example.com", "privateZone": False}


def test_alias_record_points_the_domain_at_the_alb(own_alb_run):
    alias = _record(own_alb_run, "A").plain
    lb = own_alb_run.one(LB).outputs
    assert alias["zoneId"] == ZONE_ID
    assert alias["name"] == "lambda.example.com"
    assert alias["aliases"] == [
        {"name": lb["dnsName"], "zoneId": ALB_ZONE_ID, "evaluateTargetHealth": False}
    ]
    assert own_alb_run.outputs["load_balancer_dns_name"] == lb["dnsName"]


def test_target_group_is_a_lambda_target_group(own_alb_run):
    assert own_alb_run.one(TARGET_GROUP).plain["targetType"] == "lambda"


def test_permission_lets_only_this_target_group_invoke_the_function(own_alb_run):
    permission = own_alb_run.one(PERMISSION).plain
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["principal"] == "elasticloadbalancing.amazonaws.com"
    assert permission["sourceArn"] == own_alb_run.one(TARGET_GROUP).outputs["arn"]
    assert permission["function"] == own_alb_run.outputs["function_name"]


def test_attachment_registers_the_function_after_the_permission(own_alb_run):
    attachment = own_alb_run.one(ATTACHMENT)
    assert attachment.plain["targetGroupArn"] == own_alb_run.one(TARGET_GROUP).outputs["arn"]
    assert attachment.plain["targetId"] == own_alb_run.outputs["function_arn"]
    assert own_alb_run.one(PERMISSION).urn in attachment.dependencies


def test_rule_matches_host_path_and_token_and_forwards_to_the_target_group(own_alb_run):
    rule = own_alb_run.one(RULE)
    assert rule.plain["priority"] == 100
    assert rule.plain["listenerArn"] == _listener(own_alb_run, 443).outputs["arn"]
    assert rule.plain["conditions"] == [
        {"hostHeader": {"values": ["lambda.example.com"]}},
        {"pathPattern": {"values": ["/webhooks/netlify"]}},
        {"queryStrings": [{"key": "token", "value": TEST_TOKEN}]},
    ]
    assert rule.plain["actions"] == [
        {"type": "forward", "targetGroupArn": own_alb_run.one(TARGET_GROUP).outputs["arn"]}
    ]
    assert own_alb_run.one(ATTACHMENT).urn in rule.dependencies


def test_rule_is_the_one_the_local_stack_emulates(own_alb_run):
    files = load_stack_files("dev")
    emulated = WebhookRule.from_settings(
        parse_site_config({**files.values, "webhookToken": TEST_TOKEN})
    )
    conditions = own_alb_run.one(RULE).plain["conditions"]
    assert conditions[0]["hostHeader"]["values"] == [emulated.host]
    assert conditions[1]["pathPattern"]["values"] == [emulated.path]
    assert conditions[2]["queryStrings"][0]["value"] == emulated.query_condition_value()
    assert own_alb_run.one(RULE).plain["priority"] == emulated.priority
    assert own_alb_run.outputs["webhook_url"] == emulated.url()


def test_given_vpc_and_subnets_are_used_without_lookups():
    subnets = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    run = run_program({"vpcId": "vpc-0123456789abcdef0", "subnetIds": json.dumps(subnets)})
    assert run.error is None, run.error
    assert run.one(LB).plain["subnets"] == subnets
    assert run.one(SG).plain["vpcId"] == "vpc-0123456789abcdef0"
    tokens = {token for token, _ in run.invokes}
    assert not tokens & {"aws:ec2/getVpc:getVpc", "aws:ec2/getSubnets:getSubnets"}
