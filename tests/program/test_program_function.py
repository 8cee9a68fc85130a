"""The function component: Lambda settings, its environment contract, IAM, secrets, logs."""

from __future__ import annotations

import json
import re

import pytest

from function import webhook_settings
from infra import naming
from tests.program.program_harness import (
    ACCOUNT_ID,
    PARAMETER_VERSION,
    REGION,
    TEST_JWS_SECRET,
    TEST_TOKEN,
    is_secret_wrapper,
    run_program,
)

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PARAMETER = "aws:ssm/parameter:Parameter"


def _policy(run) -> dict:
    return json.loads(run.ingest(POLICY).plain["policy"])


QUEUE = "aws:sqs/queue:Queue"


def _queue(run):
    """The invalidation queue (the other queue is its dead-letter queue)."""
    return next(r for r in run.of_type(QUEUE) if r.plain["name"].endswith("-invalidations"))


def _statement(run, action: str) -> dict:
    found = [s for s in _policy(run)["Statement"] if action in s["Action"]]
    assert len(found) == 1
    return found[0]


def test_lambda_runs_python313_on_arm64_with_the_handler(own_alb_run):
    function = own_alb_run.ingest(FUNCTION).plain
    assert function["runtime"] == "python3.13"
    assert function["architectures"] == ["arm64"]
    assert function["handler"] == "function.handler.handler"
    assert function["name"] == own_alb_run.outputs["function_name"]


def test_lambda_code_is_the_function_folder_without_caches(own_alb_run):
    code = own_alb_run.ingest(FUNCTION).inputs["code"]
    names = set(code.assets)
    # The package folder itself, so Lambda imports function.handler as the tests do.
    assert {"function/__init__.py", "function/handler.py", "function/webhook_settings.py"} <= names
    assert all(name.startswith("function/") for name in names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_lambda_environment_is_accepted_by_the_functions_own_loader(own_alb_run):
    variables = own_alb_run.ingest(FUNCTION).plain["environment"]["variables"]
    loaded = webhook_settings.load_settings(variables)
    assert loaded.distribution_ids == ("E2EXAMPLE1ABCD",)
    assert loaded.invalidation_paths == ("/*",)
    assert loaded.deploy_contexts == ("production",)
    assert loaded.netlify_site_id == "3f8a2c1e-5b7d-4e9f-a1c3-2d4e6f8a0b1c"
    assert loaded.secrets_parameter == own_alb_run.outputs["secrets_parameter_name"]
    assert loaded.secrets_parameter == own_alb_run.one(PARAMETER).plain["name"]


def test_a_secrets_rotation_changes_the_lambda_configuration(own_alb_run):
    # Warm containers keep the secrets they read; a new parameter version in the environment
    # makes Lambda replace them when the token or JWS secret changes.
    variables = own_alb_run.ingest(FUNCTION).plain["environment"]["variables"]
    assert variables[webhook_settings.ENV_SECRETS_VERSION] == str(PARAMETER_VERSION)


def test_lambda_environment_holds_no_secret(own_alb_run):
    variables = own_alb_run.ingest(FUNCTION).plain["environment"]["variables"]
    assert not any(TEST_TOKEN in v or TEST_JWS_SECRET in v for v in variables.values())


def test_lambda_logs_json_to_its_own_log_group_created_first(own_alb_run):
    function = own_alb_run.ingest(FUNCTION)
    log_group = own_alb_run.ingest(LOG_GROUP)
    expected_name = f"/aws/lambda/{function.plain['name']}"
    assert log_group.plain["name"] == expected_name
    assert log_group.plain["retentionInDays"] == 14
    assert function.plain["loggingConfig"] == {"logFormat": "JSON", "logGroup": expected_name}
    assert log_group.urn in function.dependencies
    assert own_alb_run.outputs["log_group_name"] == expected_name


def test_role_is_assumable_by_lambda_only(own_alb_run):
    role = own_alb_run.ingest(ROLE)
    document = json.loads(role.plain["assumeRolePolicy"])
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert not role.plain.get("managedPolicyArns")  # no AWSLambdaBasicExecutionRole (Resource *)
    assert own_alb_run.ingest(FUNCTION).plain["role"] == role.outputs["arn"]
    assert own_alb_run.ingest(POLICY).plain["role"] == role.id  # the inline policy's role


def test_policy_allows_exactly_three_purposes_and_no_wildcard_resource(own_alb_run):
    statements = _policy(own_alb_run)["Statement"]
    assert [s["Sid"] for s in statements] == [
        "WriteOwnLogs",
        "ReadWebhookSecrets",
        "QueueInvalidations",
    ]
    actions = sorted(action for s in statements for action in s["Action"])
    assert actions == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:SendMessage",  # also authorizes SendMessageBatch
        "ssm:GetParameter",
    ]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in statement["Resource"]
        assert all(not r.endswith(":*") or "log-group:" in r for r in statement["Resource"])


def test_ingest_policy_has_no_cloudfront_action(own_alb_run):
    # The function facing the internet only queues; the worker holds CreateInvalidation.
    actions = [action for s in _policy(own_alb_run)["Statement"] for action in s["Action"]]
    assert not any(action.startswith("cloudfront:") for action in actions)
    assert ":cloudfront:" not in own_alb_run.ingest(POLICY).plain["policy"]  # no resource either


def test_policy_sends_only_to_the_invalidation_queue(own_alb_run):
    statement = _statement(own_alb_run, "sqs:SendMessage")
    queue = _queue(own_alb_run)
    assert statement["Resource"] == [queue.outputs["arn"]]
    assert queue.outputs["arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue.plain['name']}"


def test_ingest_environment_names_the_queue_it_sends_to(own_alb_run):
    variables = own_alb_run.ingest(FUNCTION).plain["environment"]["variables"]
    loaded = webhook_settings.load_settings(variables)
    assert loaded.queue_url == _queue(own_alb_run).outputs["url"]
    assert loaded.queue_url == own_alb_run.outputs["queue_url"]


def test_ingest_environment_lists_each_configured_distribution():
    run = run_program({"distributionIds": '["E2EXAMPLE1ABCD", "E3SECOND0WXYZ"]'})
    assert run.error is None, run.error
    assert run.outputs["distribution_ids"] == ["E2EXAMPLE1ABCD", "E3SECOND0WXYZ"]
    variables = run.ingest(FUNCTION).plain["environment"]["variables"]
    assert webhook_settings.load_settings(variables).distribution_ids == (
        "E2EXAMPLE1ABCD",
        "E3SECOND0WXYZ",
    )


def test_policy_reads_only_the_secrets_parameter(own_alb_run):
    statement = _statement(own_alb_run, "ssm:GetParameter")
    parameter = own_alb_run.one(PARAMETER)
    assert statement["Resource"] == [parameter.outputs["arn"]]
    assert parameter.outputs["arn"] == (
        f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:parameter{own_alb_run.outputs['secrets_parameter_name']}"
    )


def test_policy_writes_logs_only_to_the_functions_log_group(own_alb_run):
    statement = _statement(own_alb_run, "logs:PutLogEvents")
    log_group_arn = own_alb_run.ingest(LOG_GROUP).outputs["arn"]
    assert statement["Resource"] == [log_group_arn, f"{log_group_arn}:*"]
    assert log_group_arn.endswith(":log-group:" + own_alb_run.outputs["log_group_name"])


def test_policy_has_no_kms_statement_because_aws_ssm_key_is_used(own_alb_run):
    actions = [action for s in _policy(own_alb_run)["Statement"] for action in s["Action"]]
    assert not any(action.startswith("kms:") for action in actions)
    assert "keyId" not in own_alb_run.one(PARAMETER).plain  # the AWS managed key aws/ssm


def test_secrets_parameter_is_a_secure_string_the_handler_can_parse(own_alb_run):
    parameter = own_alb_run.one(PARAMETER)
    assert parameter.plain["type"] == "SecureString"
    assert is_secret_wrapper(parameter.inputs["value"])
    secrets = webhook_settings.parse_secrets(parameter.plain["value"])
    assert (secrets.token, secrets.jws_secret) == (TEST_TOKEN, TEST_JWS_SECRET)


def test_secrets_parameter_without_jws_secret_turns_the_signature_check_off(unsigned_run):
    value = unsigned_run.one(PARAMETER).plain["value"]
    assert json.loads(value) == {"token": TEST_TOKEN}
    assert webhook_settings.parse_secrets(value).jws_secret is None


@pytest.mark.parametrize("type_", [FUNCTION, LOG_GROUP, PARAMETER, ROLE, POLICY])
def test_function_resources_are_children_of_the_function_component(own_alb_run, type_):
    # .ingest() finds exactly one of each type under the ingest's component.
    assert own_alb_run.ingest(type_).name.startswith("site-fn-")


def test_function_name_fits_lambdas_limits_even_for_long_stacks_and_domains():
    long_domain = ".".join(["label" * 10] * 4) + ".example.com"
    name = naming.function_name("a-very-long-stack-name.with.dots", long_domain)
    assert len(name) <= 64
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name)
    assert name == naming.function_name("a-very-long-stack-name.with.dots", long_domain)
    assert name != naming.function_name("a-very-long-stack-name.with.dots", "x" + long_domain)
