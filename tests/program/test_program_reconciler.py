"""The optional reconciler (issue 11) under Pulumi mocks: its Lambda, schedule, permission,
policy statement by statement, alarms and outputs; the Netlify API token only in the secrets
parameter; the config keys that switch it on and tune it."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from function import reconciler, webhook_settings
from infra import naming
from infra.alarms import (
    METRIC_NAMESPACE,
    MISSED_PUBLISHES_METRIC,
    NETLIFY_API_ERRORS_METRIC,
    STACK_DIMENSION,
    UNHEALTHY_HOOKS_METRIC,
)
from infra.reconciler import reconciler_policy
from infra.settings import ConfigError, parse_site_config
from infra.stack_files import PROJECT_DIR
from tests.program.conftest import ALL_SECRETS
from tests.program.program_harness import (
    ACCOUNT_ID,
    FUNCTION_URL_ID,
    REGION,
    TEST_API_TOKEN,
    TEST_JWS_SECRET,
    TEST_TOKEN,
    ProgramRun,
    config_error,
    dev_config,
    is_secret_wrapper,
    plain_strings,
    run_program,
)

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PARAMETER = "aws:ssm/parameter:Parameter"
QUEUE = "aws:sqs/queue:Queue"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
TOPIC = "aws:sns/topic:Topic"
RECONCILER_TYPES = {RULE, TARGET, "ncw:site:Reconciler"}
DOMAIN = "lambda.example.com"
SITE_ID = "3f8a2c1e-5b7d-4e9f-a1c3-2d4e6f8a0b1c"
TWO_DISTRIBUTIONS = ["E2EXAMPLE1ABCD", "E3SECOND0WXYZ"]


@pytest.fixture(scope="module")
def china_reconciler_run() -> ProgramRun:
    run = run_program(
        {"distributionIds": json.dumps(TWO_DISTRIBUTIONS)}, secrets=ALL_SECRETS, partition="aws-cn"
    )
    assert run.error is None, run.error
    return run


def _statements(run: ProgramRun) -> dict[str, dict]:
    policy = json.loads(run.reconciler(POLICY).plain["policy"])
    assert policy["Version"] == "2012-10-17"
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def _alarms(run: ProgramRun, stack: str, domain: str) -> dict[str, dict]:
    prefix = naming.alarm_name(stack, domain, "x").removesuffix("x")
    return {r.plain["name"].removeprefix(prefix): r.plain for r in run.of_type(ALARM)}


def _queue(run: ProgramRun):
    return next(r for r in run.of_type(QUEUE) if r.plain["name"].endswith("-invalidations"))


def _dead_letter_queue(run: ProgramRun):
    return next(r for r in run.of_type(QUEUE) if r.plain["name"].endswith("-dead-letters"))


def _variables(run: ProgramRun) -> dict[str, str]:
    return run.reconciler(FUNCTION).plain["environment"]["variables"]


# -- off unless netlifyApiToken is set ---------------------------------------------------------


@pytest.mark.parametrize("run_name", ["own_alb_run", "shared_run", "unsigned_run", "url_run"])
def test_no_reconciler_without_a_netlify_api_token(request, run_name):
    run = request.getfixturevalue(run_name)
    assert {r.type for r in run.resources} & RECONCILER_TYPES == set()
    assert len(run.of_type(FUNCTION)) == 2  # ingest and worker
    assert not any(p.plain["principal"] == "events.amazonaws.com" for p in run.of_type(PERMISSION))
    assert not {"reconciler_function_name", "reconciler_log_group_name"} & set(run.outputs)
    assert "missed-publishes" not in " ".join(a.plain["name"] for a in run.of_type(ALARM))


def test_an_empty_netlify_api_token_leaves_the_reconciler_off():
    values, _ = dev_config()
    values.update({"webhookToken": TEST_TOKEN, "netlifyApiToken": ""})
    settings = parse_site_config(values)
    assert settings.netlify_api_token is None
    assert not settings.reconciler_enabled


# -- the Lambda --------------------------------------------------------------------------------


def test_reconciler_runs_its_handler_from_the_same_package_with_its_own_role(reconciler_run):
    reconciler = reconciler_run.reconciler(FUNCTION)
    ingest = reconciler_run.ingest(FUNCTION)
    assert reconciler.plain["name"] == naming.reconciler_function_name("dev", DOMAIN)
    assert reconciler.plain["handler"] == "function.reconciler.handler"
    for key in ("runtime", "architectures"):
        assert reconciler.plain[key] == ingest.plain[key]
    assert set(reconciler.inputs["code"].assets) == set(ingest.inputs["code"].assets)
    assert reconciler.plain["timeout"] == 60
    role = reconciler_run.reconciler(ROLE)
    assert reconciler.plain["role"] == role.outputs["arn"]
    assert {r.outputs["arn"] for r in reconciler_run.of_type(ROLE)} == {
        f.plain["role"] for f in reconciler_run.of_type(FUNCTION)
    }  # three functions, three roles
    assert len(reconciler_run.of_type(ROLE)) == 3
    document = json.loads(role.plain["assumeRolePolicy"])
    assert document["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_a_failed_run_is_not_retried_by_lambda(reconciler_run):
    # Asynchronous invocations are retried twice by default; a retry could overlap the next run.
    (config,) = reconciler_run.of_type(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
    )
    assert config.plain["maximumRetryAttempts"] == 0
    assert config.plain["functionName"] == reconciler_run.reconciler(FUNCTION).plain["name"]


def test_reconciler_logs_json_to_its_own_log_group_created_first(reconciler_run):
    function = reconciler_run.reconciler(FUNCTION)
    log_group = reconciler_run.reconciler(LOG_GROUP)
    name = f"/aws/lambda/{function.plain['name']}"
    assert log_group.plain["name"] == name
    assert log_group.plain["retentionInDays"] == 14
    assert function.plain["loggingConfig"] == {"logFormat": "JSON", "logGroup": name}
    assert log_group.urn in function.dependencies
    assert reconciler_run.reconciler(POLICY).urn in function.dependencies


def test_reconciler_environment_is_accepted_by_its_own_loader(reconciler_run):
    variables = _variables(reconciler_run)
    loaded = webhook_settings.load_reconciler_settings(variables)
    assert loaded.netlify_site_id == SITE_ID
    assert loaded.distribution_ids == ("E2EXAMPLE1ABCD",)
    assert loaded.invalidation_paths == ("/*",)
    assert loaded.secrets_parameter == reconciler_run.outputs["secrets_parameter_name"]
    assert loaded.queue_url == reconciler_run.outputs["queue_url"]
    assert loaded.webhook_endpoint == f"https://{DOMAIN}/webhooks/netlify"
    assert loaded.stack_name == "dev"
    assert loaded.netlify_api_url == webhook_settings.DEFAULT_NETLIFY_API_URL
    assert loaded.dead_letter_queue_url == reconciler_run.outputs["dead_letter_queue_url"]
    assert set(variables) == {
        "DEAD_LETTER_QUEUE_URL",
        "NETLIFY_SITE_ID",
        "DISTRIBUTION_IDS",
        "INVALIDATION_PATHS",
        "SECRETS_PARAMETER",
        "QUEUE_URL",
        "WEBHOOK_ENDPOINT",
        "STACK_NAME",
        "NETLIFY_API_URL",
        "SECRETS_VERSION",  # a rotated API token replaces the warm containers
    }


def test_behind_a_function_url_the_endpoint_is_the_function_url_without_token(
    url_reconciler_run,
):
    loaded = webhook_settings.load_reconciler_settings(_variables(url_reconciler_run))
    assert loaded.webhook_endpoint == (
        f"https://{FUNCTION_URL_ID}.lambda-url.{REGION}.on.aws/webhooks/netlify"
    )
    assert url_reconciler_run.outputs["webhook_url"] == (
        f"{loaded.webhook_endpoint}?token={TEST_TOKEN}"
    )
    assert loaded.stack_name == "dev-url"


# -- the token stays in the parameter ----------------------------------------------------------


@pytest.mark.parametrize("run_name", ["reconciler_run", "url_reconciler_run"])
def test_api_token_is_stored_in_the_secrets_parameter_as_a_secret(request, run_name):
    parameter = request.getfixturevalue(run_name).one(PARAMETER)
    assert is_secret_wrapper(parameter.inputs["value"])
    secrets = webhook_settings.parse_secrets(parameter.plain["value"])
    assert (secrets.token, secrets.jws_secret, secrets.netlify_api_token) == (
        TEST_TOKEN,
        TEST_JWS_SECRET,
        TEST_API_TOKEN,
    )


@pytest.mark.parametrize("run_name", ["reconciler_run", "url_reconciler_run"])
def test_api_token_is_in_no_other_resource_environment_or_output(request, run_name):
    run = request.getfixturevalue(run_name)
    # Not in any plain string of any resource input...
    assert [
        r.name for r in run.resources if any(TEST_API_TOKEN in s for s in plain_strings(r.inputs))
    ] == []
    # ...and, secrets unwrapped, only in the parameter.
    holders = [
        r.type for r in run.resources if any(TEST_API_TOKEN in s for s in plain_strings(r.plain))
    ]
    assert holders == [PARAMETER]
    for function in run.of_type(FUNCTION):
        variables = function.plain["environment"]["variables"]
        assert not any(TEST_API_TOKEN in v for v in variables.values())
    # No output holds it, secret or not.
    assert not any(TEST_API_TOKEN in json.dumps(value) for value in run.outputs.values())


def test_reconciler_environment_carries_no_webhook_token(reconciler_run):
    assert not any(
        TEST_TOKEN in v or TEST_JWS_SECRET in v for v in _variables(reconciler_run).values()
    )


# -- schedule and permission -------------------------------------------------------------------


def test_schedule_runs_every_reconcile_minutes(reconciler_run, url_reconciler_run):
    assert reconciler_run.one(RULE).plain["scheduleExpression"] == "rate(10 minutes)"
    assert url_reconciler_run.one(RULE).plain["scheduleExpression"] == "rate(30 minutes)"
    rule = reconciler_run.one(RULE).plain
    assert rule["state"] == "ENABLED"
    assert rule["name"] == naming.reconciler_schedule_name("dev", DOMAIN)
    assert "eventPattern" not in rule


def test_schedule_targets_the_reconciler_after_its_permission(reconciler_run):
    target = reconciler_run.one(TARGET)
    rule = reconciler_run.one(RULE)
    function = reconciler_run.reconciler(FUNCTION)
    assert target.plain["rule"] == rule.plain["name"]
    assert target.plain["arn"] == function.outputs["arn"]
    assert reconciler_run.reconciler(PERMISSION).urn in target.dependencies


def test_only_the_schedule_may_invoke_the_reconciler(reconciler_run):
    permission = reconciler_run.reconciler(PERMISSION).plain
    assert permission == {
        "action": "lambda:InvokeFunction",
        "function": reconciler_run.outputs["reconciler_function_name"],
        "principal": "events.amazonaws.com",
        "sourceArn": reconciler_run.one(RULE).outputs["arn"],
    }
    rule_name = naming.reconciler_schedule_name("dev", DOMAIN)
    assert permission["sourceArn"] == f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"


# -- policy, statement by statement ------------------------------------------------------------


def test_policy_has_exactly_six_purposes(reconciler_run):
    assert list(_statements(reconciler_run)) == [
        "WriteOwnLogs",
        "ReadWebhookSecrets",
        "ReadSiteInvalidations",
        "QueueMissedInvalidations",
        "ReadQueueDepth",
        "PutReconcilerMetrics",
    ]
    assert all(s["Effect"] == "Allow" for s in _statements(reconciler_run).values())


def test_policy_writes_logs_only_to_its_own_log_group(reconciler_run):
    statement = _statements(reconciler_run)["WriteOwnLogs"]
    arn = reconciler_run.reconciler(LOG_GROUP).outputs["arn"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == [arn, f"{arn}:*"]


def test_policy_reads_only_the_sites_parameter(reconciler_run):
    statement = _statements(reconciler_run)["ReadWebhookSecrets"]
    assert statement["Action"] == ["ssm:GetParameter"]
    assert statement["Resource"] == [reconciler_run.one(PARAMETER).outputs["arn"]]


def test_policy_lists_and_reads_invalidations_of_the_sites_distributions_only(
    china_reconciler_run,
):
    statement = _statements(china_reconciler_run)["ReadSiteInvalidations"]
    # ListInvalidations gives Id, CreateTime and Status; the paths take GetInvalidation.
    assert statement["Action"] == ["cloudfront:ListInvalidations", "cloudfront:GetInvalidation"]
    assert statement["Resource"] == [
        f"arn:aws-cn:cloudfront::{ACCOUNT_ID}:distribution/{d}" for d in TWO_DISTRIBUTIONS
    ]
    assert "arn:aws:" not in china_reconciler_run.reconciler(POLICY).plain["policy"]


def test_policy_sends_only_to_the_invalidation_queue(reconciler_run):
    statement = _statements(reconciler_run)["QueueMissedInvalidations"]
    assert statement["Action"] == ["sqs:SendMessage"]  # also authorizes SendMessageBatch
    assert statement["Resource"] == [_queue(reconciler_run).outputs["arn"]]


def test_policy_reads_the_depth_of_the_site_queues_only(reconciler_run):
    # The reconciler queues nothing while the queue still holds messages for the site, nor
    # while the dead-letter queue does (a repair would end there too).
    statement = _statements(reconciler_run)["ReadQueueDepth"]
    assert statement["Action"] == ["sqs:GetQueueAttributes"]
    assert statement["Resource"] == [
        _queue(reconciler_run).outputs["arn"],
        _dead_letter_queue(reconciler_run).outputs["arn"],
    ]


def test_policy_allows_every_aws_call_the_reconciler_makes():
    # The function's module names the AWS operations it calls; each needs its IAM action.
    source = (PROJECT_DIR / "function" / "reconciler.py").read_text()
    calls = set(re.findall(r"client\.([a-z_]+)\(", source)) - {"get_json"}
    actions = {
        "get_parameter": "ssm:GetParameter",
        "list_invalidations": "cloudfront:ListInvalidations",
        "get_invalidation": "cloudfront:GetInvalidation",
        "get_queue_attributes": "sqs:GetQueueAttributes",
        "send_message_batch": "sqs:SendMessage",
        "send_message": "sqs:SendMessage",
        "put_metric_data": "cloudwatch:PutMetricData",
    }
    assert calls <= set(actions), calls - set(actions)
    policy = reconciler_policy(
        partition="aws",
        account_id=ACCOUNT_ID,
        distribution_ids=["E2EXAMPLE1ABCD"],
        log_group_arn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/x",
        parameter_arn="arn:aws:ssm:us-east-1:123456789012:parameter/p",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        dead_letter_queue_arn="arn:aws:sqs:us-east-1:123456789012:dlq",
    )
    granted = {action for s in policy["Statement"] for action in s["Action"]}
    assert {actions[call] for call in calls} <= granted


def test_metric_names_are_the_ones_the_reconciler_publishes():
    assert (METRIC_NAMESPACE, STACK_DIMENSION) == (
        reconciler.METRIC_NAMESPACE,
        reconciler.METRIC_DIMENSION,
    )
    assert (MISSED_PUBLISHES_METRIC, UNHEALTHY_HOOKS_METRIC, NETLIFY_API_ERRORS_METRIC) == (
        reconciler.MISSED_PUBLISHES,
        reconciler.UNHEALTHY_HOOKS,
        reconciler.NETLIFY_API_ERRORS,
    )


def test_policy_puts_metrics_only_in_the_projects_namespace(reconciler_run):
    statement = _statements(reconciler_run)["PutReconcilerMetrics"]
    assert statement["Action"] == ["cloudwatch:PutMetricData"]
    assert statement["Resource"] == "*"  # PutMetricData has no resource type
    assert statement["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "NetlifyCloudFrontWebhook"}
    }
    assert METRIC_NAMESPACE == "NetlifyCloudFrontWebhook"


def test_only_the_metrics_statement_has_a_wildcard_resource(reconciler_run):
    for sid, statement in _statements(reconciler_run).items():
        if sid != "PutReconcilerMetrics":
            assert "*" not in statement["Resource"]
            assert "Condition" not in statement


# -- alarms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_name", "stack", "domain", "period"),
    [("reconciler_run", "dev", DOMAIN, 600), ("url_reconciler_run", "dev-url", "", 1800)],
)
@pytest.mark.parametrize(
    ("purpose", "metric"),
    [("missed-publishes", "MissedPublishes"), ("unhealthy-hooks", "UnhealthyHooks")],
)
def test_reconciler_metric_alarms_fire_at_one_and_notify_the_sites_topic(
    request, run_name, stack, domain, period, purpose, metric
):
    run = request.getfixturevalue(run_name)
    alarm = _alarms(run, stack, domain)[purpose]
    topic_arn = run.one(TOPIC).outputs["arn"]
    assert {
        key: alarm[key]
        for key in (
            "namespace",
            "metricName",
            "dimensions",
            "statistic",
            "threshold",
            "comparisonOperator",
            "treatMissingData",
            "alarmActions",
            "okActions",
            "period",
            "evaluationPeriods",
            "datapointsToAlarm",
        )
    } == {
        "namespace": "NetlifyCloudFrontWebhook",
        "metricName": metric,
        "dimensions": {"Stack": stack},
        "statistic": "Sum",
        "threshold": 1,
        "comparisonOperator": "GreaterThanOrEqualToThreshold",
        "treatMissingData": "notBreaching",
        "alarmActions": [topic_arn],
        "okActions": [topic_arn],
        # One run per period, and one breaching run in two periods keeps a lasting finding up.
        "period": period,
        "evaluationPeriods": 2,
        "datapointsToAlarm": 1,
    }


def test_reconciler_errors_alarm_watches_its_lambda_errors(reconciler_run):
    alarm = _alarms(reconciler_run, "dev", DOMAIN)["reconciler-errors"]
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
        "AWS/Lambda",
        "Errors",
        "Sum",
    )
    assert alarm["dimensions"] == {
        "FunctionName": reconciler_run.outputs["reconciler_function_name"]
    }


def test_eight_alarms_with_the_reconciler(reconciler_run):
    assert set(_alarms(reconciler_run, "dev", DOMAIN)) == {
        "dead-letters",
        "queue-stuck",
        "ingest-5xx",
        "ingest-errors",
        "worker-errors",
        "missed-publishes",
        "unhealthy-hooks",
        "reconciler-errors",
    }


# -- outputs, structure ------------------------------------------------------------------------


def test_outputs_name_the_reconciler_and_its_log_group(reconciler_run):
    outputs = reconciler_run.outputs
    assert outputs["reconciler_function_name"] == naming.reconciler_function_name("dev", DOMAIN)
    assert outputs["reconciler_log_group_name"] == (
        "/aws/lambda/" + outputs["reconciler_function_name"]
    )
    assert reconciler_run.secret_outputs == {"webhook_url", "netlify_hooks"}


def test_reconciler_resources_are_children_of_its_component_and_tagged(reconciler_run):
    component = reconciler_run.one("ncw:site:Reconciler")
    children = [r for r in reconciler_run.resources if r.parent == component.urn]
    assert {r.type for r in children} == {
        LOG_GROUP,
        ROLE,
        POLICY,
        FUNCTION,
        RULE,
        PERMISSION,
        TARGET,
        INVOKE_CONFIG,
    }
    tags = {"project": "netlify-cloudfront-webhook", "stack": "dev", "site": DOMAIN}
    for resource in children:
        if resource.type in {LOG_GROUP, ROLE, FUNCTION, RULE}:
            assert resource.plain["tags"] == tags, resource.name


# -- config ------------------------------------------------------------------------------------


def _values(**overrides: str | None) -> dict[str, str]:
    values, _ = dev_config()
    values.update({"webhookToken": TEST_TOKEN, "netlifyApiToken": TEST_API_TOKEN})
    for key, value in overrides.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


@pytest.mark.parametrize("minutes", ["4", "61", "0", "-10"])
def test_reconcile_minutes_out_of_range_are_refused(minutes):
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_values(reconcileMinutes=minutes))
    assert caught.value.key == "reconcileMinutes"
    assert str(caught.value).endswith("out of range; allowed: 5-60")


def test_reconcile_minutes_that_is_not_a_number_is_refused():
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_values(reconcileMinutes="often"))
    assert caught.value.key == "reconcileMinutes"


@pytest.mark.parametrize(("minutes", "expected"), [("5", 5), ("60", 60), (None, 10)])
def test_reconcile_minutes_within_range_or_default(minutes, expected):
    assert parse_site_config(_values(reconcileMinutes=minutes)).reconcile_minutes == expected


@pytest.mark.parametrize("site_id", [None, ""])
def test_api_token_without_netlify_site_id_is_refused_naming_netlify_site_id(site_id):
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_values(netlifySiteId=site_id))
    assert caught.value.key == "netlifySiteId"
    assert "netlifyApiToken is set" in str(caught.value)
    assert TEST_API_TOKEN not in str(caught.value)


def test_api_token_in_plain_text_stops_the_program():
    secrets = {"webhookToken": TEST_TOKEN, "netlifyJwsSecret": TEST_JWS_SECRET}
    run = run_program({"netlifyApiToken": TEST_API_TOKEN}, secrets=secrets)
    error = config_error(run)
    assert error.key == "netlifyApiToken"
    assert "pulumi config set --secret netlifyApiToken" in str(error)
    assert TEST_API_TOKEN not in str(run.error)
    assert run.resources == []


def test_bad_reconciler_config_stops_the_program_before_any_resource():
    run = run_program({"reconcileMinutes": "1"}, secrets=ALL_SECRETS)
    assert config_error(run).key == "reconcileMinutes"
    assert (run.resources, run.invokes) == ([], [])


def test_schema_declares_the_reconciler_keys_without_a_secret_default():
    config = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
    token = config["netlifyApiToken"]
    # `secret: true` with a default would store the empty default in plain text and be refused.
    assert (token["type"], token["default"], token.get("secret")) == ("string", "", None)
    assert config["reconcileMinutes"] == {
        "type": "integer",
        "description": config["reconcileMinutes"]["description"],
        "default": 10,
    }
    assert "5-60" in config["reconcileMinutes"]["description"]
    assert "--secret" in token["description"]
