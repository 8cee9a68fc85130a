"""The embedded AWS: seeded like the site's account, named like the Pulumi program names it.

All tests share the module's ``stub_stack``; tests that start their own stack are in
``test_local_stack_lifecycle.py`` (one local stack per process at a time).
"""

from __future__ import annotations

import json
import os

from function import webhook_settings
from infra import naming
from infra.stack_files import load_stack_files
from tests.local.local_helpers import TEST_JWS_SECRET, TEST_TOKEN

DEV = load_stack_files("dev")
DEV_IDS = json.loads(DEV.values["distributionIds"])


def test_each_configured_distribution_exists_under_its_configured_id(stub_stack):
    cloudfront = stub_stack.client("cloudfront")
    listed = [item["Id"] for item in cloudfront.list_distributions()["DistributionList"]["Items"]]
    assert listed == DEV_IDS
    assert stub_stack.distribution_ids == tuple(DEV_IDS)
    for dist_id in DEV_IDS:
        dist = cloudfront.get_distribution(Id=dist_id)["Distribution"]
        assert dist["Id"] == dist_id
        assert dist["ARN"].endswith(f":distribution/{dist_id}")


def test_distributions_are_shaped_like_the_site(stub_stack):
    cloudfront = stub_stack.client("cloudfront")
    config = cloudfront.get_distribution_config(Id=DEV_IDS[0])["DistributionConfig"]
    origins = {origin["Id"]: origin for origin in config["Origins"]["Items"]}
    default_origin = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert default_origin["DomainName"].endswith(".netlify.app")
    assert "CustomOriginConfig" in default_origin

    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]["Items"]}
    pdf_origin = origins[behaviors["/pdf/*"]["TargetOriginId"]]
    assert "S3OriginConfig" in pdf_origin
    assert ".s3." in pdf_origin["DomainName"]
    assert config["Enabled"] is True


def test_an_invalidation_can_be_made_on_a_configured_id(stub_stack):
    cloudfront = stub_stack.client("cloudfront")
    made = cloudfront.create_invalidation(
        DistributionId=DEV_IDS[0],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": "t-1"},
    )["Invalidation"]
    got = cloudfront.get_invalidation(DistributionId=DEV_IDS[0], Id=made["Id"])["Invalidation"]
    assert got["InvalidationBatch"]["CallerReference"] == "t-1"


def test_the_secrets_parameter_holds_the_token_and_jws_secret(stub_stack):
    parameter = stub_stack.client("ssm").get_parameter(
        Name=stub_stack.secrets_parameter_name, WithDecryption=True
    )["Parameter"]
    assert parameter["Type"] == "SecureString"
    secrets = webhook_settings.parse_secrets(parameter["Value"])
    assert (secrets.token, secrets.jws_secret) == (TEST_TOKEN, TEST_JWS_SECRET)


def test_names_come_from_the_pulumi_programs_naming(stub_stack):
    domain = stub_stack.settings.domain
    assert stub_stack.function_name == naming.function_name("dev", domain)
    assert stub_stack.log_group_name == naming.log_group_name(stub_stack.function_name)
    assert stub_stack.secrets_parameter_name == naming.secrets_parameter_name("dev", domain)


def test_the_log_group_exists_with_the_configured_retention(stub_stack):
    groups = stub_stack.client("logs").describe_log_groups(
        logGroupNamePrefix=stub_stack.log_group_name
    )["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
        (stub_stack.log_group_name, stub_stack.settings.log_retention_days)
    ]


def test_the_runbook_environment_contract(stub_stack):
    env = stub_stack.environment()
    assert env["AWS_ENDPOINT_URL"] == stub_stack.endpoint_url
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == DEV.provider["aws:region"]
    assert env["NCW_STACK"] == "dev"
    assert env["NCW_WEBHOOK_URL"] == stub_stack.webhook_url
    assert env["NCW_WEBHOOK_URL"].startswith("http://127.0.0.1:")
    assert env["NCW_WEBHOOK_URL"].endswith(f"{stub_stack.rule.path}?token={TEST_TOKEN}")
    assert env["NCW_WEBHOOK_HOST"] == stub_stack.settings.domain
    assert env["NCW_JWS_SECRET"] == TEST_JWS_SECRET
    assert env["NCW_DISTRIBUTION_IDS"] == ",".join(DEV_IDS)
    assert env["NCW_FUNCTION_NAME"] == stub_stack.function_name
    assert env["NCW_LOG_GROUP"] == stub_stack.log_group_name
    assert env["NCW_NETLIFY_SITE_ID"] == DEV.values["netlifySiteId"]
    assert env["NCW_SECRETS_PARAMETER"] == stub_stack.secrets_parameter_name
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]


def test_the_function_environment_is_set_while_the_stack_runs(stub_stack):
    settings = webhook_settings.load_settings(os.environ)
    assert settings.distribution_ids == tuple(DEV_IDS)
    assert settings.secrets_parameter == stub_stack.secrets_parameter_name
    assert os.environ["AWS_ENDPOINT_URL"] == stub_stack.endpoint_url
