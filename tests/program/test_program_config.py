"""Stack config validation: every bad value stops the program, naming key, problem, allowed."""

from __future__ import annotations

import shutil

import pulumi
import pytest

from function import webhook_settings
from infra.settings import ConfigError, parse_site_config
from infra.stack_files import PROJECT_DIR, load_stack_files, schema_defaults
from tests.program.program_harness import SHARED_LISTENER_ARN, TEST_TOKEN, dev_config, run_program

VPC = "vpc-0123456789abcdef0"
SUBNET_A = "subnet-0123456789abcdef0"
SUBNET_B = "subnet-0fedcba9876543210"
WILDCARD_TOKEN = "abcdefgh*ijklmnop?qrs"


def _dev(**overrides: str | None) -> dict[str, str]:
    values, _ = dev_config()
    values["webhookToken"] = TEST_TOKEN
    for key, value in overrides.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


BAD_VALUES = [
    # (key, overrides, fragment of the problem, fragment of what is allowed)
    ("domain", {"domain": "not a host"}, "is not a host name", "lambda.mysite.com"),
    ("domain", {"domain": ""}, "missing or empty", "pulumi config set domain"),
    ("hostedZone", {"hostedZone": "other.org"}, "does not contain", "Route53 zone"),
    ("distributionIds", {"distributionIds": "[]"}, "the list is empty", "distribution ids"),
    ("distributionIds", {"distributionIds": '["e2lower1"]'}, "not a distribution id", "A-Z"),
    ("distributionIds", {"distributionIds": "E2EXAMPLE"}, "not a JSON list", '["a", "b"]'),
    ("invalidationPaths", {"invalidationPaths": '["no-slash"]'}, "must start with '/'", "'/'"),
    ("invalidationPaths", {"invalidationPaths": '["/a*/b"]'}, "'*' only as its last", "end"),
    ("invalidationPaths", {"invalidationPaths": "[]"}, "at least one path", "paths"),
    ("deployContexts", {"deployContexts": '["staging"]'}, "unknown context", "deploy-preview"),
    ("deployContexts", {"deployContexts": "[]"}, "the list is empty", "branch-deploy"),
    ("netlifySiteId", {"netlifySiteId": "bad id!"}, "not a Netlify site id", "API ID"),
    ("webhookPath", {"webhookPath": "webhooks"}, "not a plain URL path", "no wildcards"),
    ("webhookPath", {"webhookPath": "/hooks/*"}, "not a plain URL path", "no wildcards"),
    ("webhookToken", {"webhookToken": "short"}, "does not fit", "16-128 characters"),
    ("webhookToken", {"webhookToken": WILDCARD_TOKEN}, "would be wildcards", "A-Z a-z 0-9 _ -"),
    ("webhookToken", {"webhookToken": "x" * 129}, "does not fit", "16-128 characters"),
    ("listenerArn", {"listenerArn": "arn:aws:foo"}, "not an ALB listener ARN", "listener/app"),
    ("rulePriority", {"rulePriority": "0"}, "out of range", "1-50000"),
    ("rulePriority", {"rulePriority": "50001"}, "out of range", "1-50000"),
    ("rulePriority", {"rulePriority": "high"}, "not a whole number", "an integer"),
    ("vpcId", {"vpcId": "vpc-xyz"}, "is not a VPC id", "vpc-<hex>"),
    ("subnetIds", {"vpcId": VPC, "subnetIds": '["subnet-zz"]'}, "not a subnet id", "subnet-"),
    ("subnetIds", {"subnetIds": f'["{SUBNET_A}", "{SUBNET_B}"]'}, "without vpcId", "vpcId"),
    ("subnetIds", {"vpcId": VPC, "subnetIds": f'["{SUBNET_A}"]'}, "two Availability", "2 or"),
    ("subnetIds", {"vpcId": VPC}, "two Availability", "with vpcId"),
    ("logRetentionDays", {"logRetentionDays": "10"}, "not a CloudWatch Logs retention", "14"),
    ("domian", {"domian": "typo.example.com"}, "unknown key", "domain"),
]


@pytest.mark.parametrize(
    ("key", "overrides", "problem", "allowed"),
    BAD_VALUES,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_VALUES)],
)
def test_bad_value_is_refused_naming_key_problem_and_allowed(key, overrides, problem, allowed):
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_dev(**overrides))
    message = str(caught.value)
    assert caught.value.key == key
    assert message.startswith(f"netlify-cloudfront-webhook:{key}: ")
    stated_problem, _, stated_allowed = message.partition("; allowed: ")
    assert problem in stated_problem
    assert allowed in stated_allowed


@pytest.mark.parametrize("token", ["short-secret", WILDCARD_TOKEN, "ÄÖÜ" * 8])
def test_token_error_never_quotes_the_token(token):
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_dev(webhookToken=token))
    assert token not in str(caught.value)
    assert token not in repr(caught.value.args)


def test_one_subnet_is_fine_for_a_shared_listener():
    settings = parse_site_config(
        _dev(vpcId=VPC, subnetIds=f'["{SUBNET_A}"]', listenerArn=SHARED_LISTENER_ARN)
    )
    assert settings.shared_listener


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"rulePriority": "0"}, "rulePriority"),
        ({"distributionIds": '["not-an-id"]'}, "distributionIds"),
        ({"webhookPath": "no-slash"}, "webhookPath"),
    ],
)
def test_bad_value_stops_the_program_before_any_resource_or_lookup(overrides, key):
    run = run_program(overrides)
    error = _config_error(run)
    assert error.key == key
    assert str(run.error) == str(error)  # the CLI shows the message alone
    assert run.resources == []
    assert run.invokes == []


def test_missing_token_stops_the_program_before_any_resource():
    run = run_program(secrets={})
    assert _config_error(run).key == "webhookToken"
    assert run.resources == []


def test_bad_token_message_through_the_program_hides_the_token():
    run = run_program(secrets={"webhookToken": WILDCARD_TOKEN})
    assert _config_error(run).key == "webhookToken"
    assert WILDCARD_TOKEN not in str(run.error)
    assert run.resources == []


@pytest.mark.parametrize("key", ["webhookToken", "netlifyJwsSecret"])
def test_secret_set_in_plain_text_stops_the_program(key):
    secrets = {"webhookToken": TEST_TOKEN, "netlifyJwsSecret": "jws-" + TEST_TOKEN}
    plain = {key: secrets.pop(key)}  # given as ordinary config, not as a secret key
    run = run_program(plain, secrets=secrets)
    error = _config_error(run)
    assert error.key == key
    assert "--secret" in str(error)
    assert plain[key] not in str(run.error)
    assert run.resources == []


def _config_error(run) -> ConfigError:
    """The program ends with a RunError (clean CLI exit) caused by the ConfigError."""
    assert isinstance(run.error, pulumi.RunError), run.error
    assert isinstance(run.error.__cause__, ConfigError)
    return run.error.__cause__


def test_committed_dev_stack_is_valid():
    settings = parse_site_config(_dev())
    assert settings.domain == "lambda.example.com"
    assert not settings.shared_listener


def test_schema_defaults_are_applied_as_the_cli_would():
    """A stack setting only the required keys gets every documented default."""
    values = {
        **schema_defaults(),
        "domain": "lambda.mysite.com",
        "distributionIds": '["E1ONLYREQUIRED"]',
        "webhookToken": TEST_TOKEN,
    }
    settings = parse_site_config(values)
    assert settings.hosted_zone == "mysite.com"
    assert settings.invalidation_paths == ("/*",)
    assert settings.deploy_contexts == ("production",)
    assert settings.webhook_path == "/webhooks/netlify"
    assert settings.rule_priority == 100
    assert settings.log_retention_days == 14
    assert settings.netlify_site_id is None
    assert settings.netlify_jws_secret is None
    assert settings.listener_arn is None
    assert (settings.vpc_id, settings.subnet_ids) == (None, ())


def test_program_with_only_required_keys_uses_the_schema_defaults(tmp_path):
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.minimal.yaml").write_text(
        "config:\n"
        "  aws:region: eu-west-1\n"
        "  netlify-cloudfront-webhook:domain: lambda.mysite.com\n"
        "  netlify-cloudfront-webhook:distributionIds:\n"
        "    - E1ONLYREQUIRED\n"
    )
    files = load_stack_files("minimal", tmp_path)
    run = run_program(stack_files=files, stack="minimal")
    assert run.error is None, run.error
    rule = run.one("aws:lb/listenerRule:ListenerRule").plain
    assert rule["priority"] == 100
    assert rule["conditions"][:2] == [
        {"hostHeader": {"values": ["lambda.mysite.com"]}},
        {"pathPattern": {"values": ["/webhooks/netlify"]}},
    ]
    assert dict(run.invokes)["aws:route53/getZone:getZone"]["name"] == "mysite.com"
    assert run.ingest("aws:cloudwatch/logGroup:LogGroup").plain["retentionInDays"] == 14
    assert run.worker("aws:cloudwatch/logGroup:LogGroup").plain["retentionInDays"] == 14
    variables = run.ingest("aws:lambda/function:Function").plain["environment"]["variables"]
    loaded = webhook_settings.load_settings(variables)
    assert (loaded.invalidation_paths, loaded.deploy_contexts) == (("/*",), ("production",))
    assert loaded.netlify_site_id is None
    assert run.one("aws:lb/loadBalancer:LoadBalancer")  # no listenerArn: own ALB
