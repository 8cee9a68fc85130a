"""The embedded AWS: seeded like the site's account, named like the Pulumi program names it.

All tests share the module's ``stub_stack``; tests that start their own stack are in
``test_local_stack_lifecycle.py`` (one local stack per process at a time).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from function import webhook_settings
from infra import naming, pipeline
from infra.function import ARCHITECTURE, HANDLER, RUNTIME, TIMEOUT_SECONDS
from infra.reconciler import RECONCILER_HANDLER, RECONCILER_TIMEOUT_SECONDS
from infra.runbook_env import RUNBOOK_ENV
from infra.stack_files import load_stack_files
from local.stack import EnvironmentConflict, merged_environment
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


def test_the_secrets_parameter_holds_the_token_the_jws_secret_and_the_netlify_token(stub_stack):
    parameter = stub_stack.client("ssm").get_parameter(
        Name=stub_stack.secrets_parameter_name, WithDecryption=True
    )["Parameter"]
    assert parameter["Type"] == "SecureString"
    secrets = webhook_settings.parse_secrets(parameter["Value"])
    assert (secrets.token, secrets.jws_secret) == (TEST_TOKEN, TEST_JWS_SECRET)
    # The reconciler's Netlify token: the fake's.
    assert secrets.netlify_api_token == stub_stack.netlify.token


def test_names_come_from_the_pulumi_programs_naming(stub_stack):
    domain = stub_stack.settings.domain
    assert stub_stack.function_name == naming.function_name("dev", domain)
    assert stub_stack.log_group_name == naming.log_group_name(stub_stack.function_name)
    assert stub_stack.secrets_parameter_name == naming.secrets_parameter_name("dev", domain)


def test_the_three_log_groups_exist_with_the_configured_retention(stub_stack):
    groups = stub_stack.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")[
        "logGroups"
    ]
    retention = stub_stack.settings.log_retention_days
    assert sorted((g["logGroupName"], g.get("retentionInDays")) for g in groups) == sorted(
        [
            (stub_stack.log_group_name, retention),
            (stub_stack.worker_log_group_name, retention),
            (stub_stack.reconciler_log_group_name, retention),
        ]
    )
    assert stub_stack.worker_log_group_name == naming.log_group_name(
        naming.worker_function_name("dev", stub_stack.settings.domain)
    )


def _queue_attributes(local, url: str) -> dict[str, str]:
    return local.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]


def test_the_queue_is_made_as_the_program_makes_it(stub_stack):
    domain = stub_stack.settings.domain
    sqs = stub_stack.client("sqs")
    assert (
        stub_stack.queue_url
        == sqs.get_queue_url(QueueName=naming.queue_name("dev", domain))["QueueUrl"]
    )
    attributes = _queue_attributes(stub_stack, stub_stack.queue_url)
    assert int(attributes["VisibilityTimeout"]) == pipeline.QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert int(attributes["MessageRetentionPeriod"]) == pipeline.QUEUE_RETENTION_SECONDS
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert attributes["QueueArn"] == stub_stack.queue_arn
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive == pipeline.redrive_policy(stub_stack.dead_letter_queue_arn)
    assert redrive["maxReceiveCount"] == pipeline.MAX_RECEIVE_COUNT


def test_the_dead_letter_queue_is_made_as_the_program_makes_it(stub_stack):
    name = naming.dead_letter_queue_name("dev", stub_stack.settings.domain)
    url = stub_stack.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    assert url == stub_stack.dead_letter_queue_url
    attributes = _queue_attributes(stub_stack, url)
    assert int(attributes["MessageRetentionPeriod"]) == pipeline.DEAD_LETTER_RETENTION_SECONDS
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert attributes["QueueArn"] == stub_stack.dead_letter_queue_arn
    assert "RedrivePolicy" not in attributes


def test_the_alarm_topic_exists_under_the_programs_name(stub_stack):
    topic = stub_stack.client("sns").get_topic_attributes(TopicArn=stub_stack.alarm_topic_arn)
    assert topic["Attributes"]["TopicArn"] == stub_stack.alarm_topic_arn
    expected = naming.alarm_topic_name("dev", stub_stack.settings.domain)
    assert stub_stack.alarm_topic_arn.endswith(f":{expected}")


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
    assert env["NCW_QUEUE_URL"] == stub_stack.queue_url
    assert env["NCW_DEAD_LETTER_QUEUE_URL"] == stub_stack.dead_letter_queue_url
    assert env["NCW_WORKER_FUNCTION_NAME"] == stub_stack.worker_function_name
    assert env["NCW_WORKER_LOG_GROUP"] == stub_stack.worker_log_group_name
    assert env["NCW_ALARM_TOPIC_ARN"] == stub_stack.alarm_topic_arn
    assert env["NCW_REGION"] == DEV.provider["aws:region"]
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["NCW_ENDPOINT"] == "alb"
    assert env["NCW_RECONCILER_FUNCTION_NAME"] == stub_stack.reconciler_function_name
    assert env["NCW_RECONCILER_LOG_GROUP"] == stub_stack.reconciler_log_group_name
    assert env["NETLIFY_API_URL"] == stub_stack.netlify.api_url
    assert env["NETLIFY_AUTH_TOKEN"] == stub_stack.netlify.token
    # Every variable of the runbook's contract is given a value.
    assert {name for name in RUNBOOK_ENV.values() if not env.get(name)} <= {"NCW_NETLIFY_SITE_ID"}
    # Alone, the stack is a fleet of one: its fleet file holds its environment.
    fleet_file = Path(env["NCW_FLEET_FILE"])
    assert json.loads(fleet_file.read_text()) == {"dev": stub_stack.stack_environment()}
    assert {**stub_stack.stack_environment(), "NCW_FLEET_FILE": str(fleet_file)} == env


def test_the_functions_exist_in_lambda_as_the_program_declares_them(stub_stack):
    lambda_ = stub_stack.client("lambda")
    version = stub_stack.client("ssm").get_parameter(Name=stub_stack.secrets_parameter_name)[
        "Parameter"
    ]["Version"]
    expected = {
        stub_stack.function_name: (HANDLER, TIMEOUT_SECONDS, stub_stack.function_variables()),
        stub_stack.worker_function_name: (
            pipeline.WORKER_HANDLER,
            pipeline.WORKER_TIMEOUT_SECONDS,
            stub_stack.worker_variables(),
        ),
        stub_stack.reconciler_function_name: (
            RECONCILER_HANDLER,
            RECONCILER_TIMEOUT_SECONDS,
            stub_stack.reconciler_variables(),
        ),
    }
    for name, (handler, timeout_s, variables) in expected.items():
        config = lambda_.get_function_configuration(FunctionName=name)
        assert (config["Runtime"], config["Handler"], config["Timeout"]) == (
            RUNTIME,
            handler,
            timeout_s,
        )
        assert config["Architectures"] == [ARCHITECTURE]
        assert config["Environment"]["Variables"] == variables
        assert "AWS_ENDPOINT_URL" not in variables  # the program's variables, nothing local
    ingest = lambda_.get_function_configuration(FunctionName=stub_stack.function_name)
    assert ingest["Environment"]["Variables"]["SECRETS_VERSION"] == str(version)
    assert ingest["Environment"]["Variables"]["WEBHOOK_PATH"] == stub_stack.settings.webhook_path


def test_the_reconciler_is_scheduled_by_an_eventbridge_rule(stub_stack):
    events = stub_stack.client("events")
    rule = events.describe_rule(Name=stub_stack.names.reconciler_schedule_name)
    minutes = stub_stack.settings.reconcile_minutes
    assert rule["ScheduleExpression"] == f"rate({minutes} minutes)"
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    arn = stub_stack.client("lambda").get_function_configuration(
        FunctionName=stub_stack.reconciler_function_name
    )["FunctionArn"]
    assert [target["Arn"] for target in targets] == [arn]


def test_the_site_and_the_stacks_hooks_are_in_the_netlify_fake(stub_stack):
    site_id = stub_stack.settings.netlify_site_id
    site = stub_stack.netlify.site(site_id)
    assert site["published_deploy"]["state"] == "ready"
    hooks = stub_stack.netlify.hooks(site_id)
    assert sorted(hook["event"] for hook in hooks) == ["deploy_created", "deploy_restored"]
    for hook in hooks:
        assert hook["data"] == {"url": stub_stack.webhook_url, "signature_secret": TEST_JWS_SECRET}
        assert hook["disabled"] is False
        assert stub_stack.hook_ids[hook["event"]] == hook["id"]


def test_both_functions_settings_are_in_the_environment_while_the_stack_runs(stub_stack):
    ingest = webhook_settings.load_settings(os.environ)
    assert ingest.distribution_ids == tuple(DEV_IDS)
    assert ingest.secrets_parameter == stub_stack.secrets_parameter_name
    assert ingest.queue_url == stub_stack.queue_url
    worker = webhook_settings.load_worker_settings(os.environ)
    assert worker.distribution_ids == tuple(DEV_IDS)
    assert worker.dead_letter_queue_url == stub_stack.dead_letter_queue_url
    assert os.environ["AWS_ENDPOINT_URL"] == stub_stack.endpoint_url


def test_environments_that_disagree_on_a_shared_variable_cannot_share_the_process():
    assert merged_environment({"A": "1", "B": "2"}, {"B": "2", "C": "3"}) == {
        "A": "1",
        "B": "2",
        "C": "3",
    }
    with pytest.raises(EnvironmentConflict, match="DISTRIBUTION_IDS"):
        merged_environment({"DISTRIBUTION_IDS": "E1"}, {"DISTRIBUTION_IDS": "E1,E2"})
