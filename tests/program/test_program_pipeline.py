"""The durable pipeline under Pulumi mocks: queues, worker, event source mapping, policies,
alarms and their topic, the new config keys and outputs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from function import webhook_settings, worker
from infra import naming
from infra.alarms import METRIC_NAMESPACE, SERVER_ERROR_PATTERN
from infra.pipeline import (
    BATCH_SIZE,
    DEAD_LETTER_RETENTION_SECONDS,
    MAX_RECEIVE_COUNT,
    OLDEST_MESSAGE_ALARM_SECONDS,
    QUEUE_RETENTION_SECONDS,
    QUEUE_VISIBILITY_TIMEOUT_SECONDS,
    WORKER_TIMEOUT_SECONDS,
)
from infra.settings import ConfigError, parse_site_config
from infra.stack_files import load_stack_files, schema_defaults
from tests.program.program_harness import (
    ACCOUNT_ID,
    ALARMS_COMPONENT,
    REGION,
    TEST_JWS_SECRET,
    TEST_TOKEN,
    ProgramRun,
    Registration,
    dev_config,
    plain_strings,
    run_program,
)

QUEUE = "aws:sqs/queue:Queue"
REDRIVE_ALLOW = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

DOMAIN = "lambda.example.com"
SHARED_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:ops-alarms"
ALARM_EMAIL = "ops@example.com"
TWO_DISTRIBUTIONS = '["E2EXAMPLE1ABCD", "E3SECOND0WXYZ"]'


# -- runs --------------------------------------------------------------------------------------


def _ok(run: ProgramRun) -> ProgramRun:
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def shared_topic_run() -> ProgramRun:
    return _ok(run_program({"alarmTopicArn": SHARED_TOPIC_ARN}))


@pytest.fixture(scope="module")
def email_run() -> ProgramRun:
    return _ok(run_program({"alarmEmail": ALARM_EMAIL}))


@pytest.fixture(scope="module")
def china_run() -> ProgramRun:
    """The dev stack with the provider in the aws-cn partition, two distributions."""
    return _ok(run_program({"distributionIds": TWO_DISTRIBUTIONS}, partition="aws-cn"))


# -- lookups -----------------------------------------------------------------------------------


def _queue(run: ProgramRun) -> Registration:
    return next(r for r in run.of_type(QUEUE) if r.plain["name"].endswith("-invalidations"))


def _dead_letter_queue(run: ProgramRun) -> Registration:
    return next(r for r in run.of_type(QUEUE) if r.plain["name"].endswith("-dead-letters"))


def _worker_policy(run: ProgramRun) -> dict:
    return json.loads(run.worker(POLICY).plain["policy"])


def _ingest_policy(run: ProgramRun) -> dict:
    return json.loads(run.ingest(POLICY).plain["policy"])


def _statements(policy: dict) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def _alarms(run: ProgramRun) -> dict[str, dict]:
    """Alarm inputs by purpose (the alarm name's suffix)."""
    prefix = naming.alarm_name("dev", DOMAIN, "x").removesuffix("x")
    return {r.plain["name"].removeprefix(prefix): r.plain for r in run.of_type(ALARM)}


def _topic_arn(run: ProgramRun) -> str:
    return run.one(TOPIC).outputs["arn"]


# -- queues ------------------------------------------------------------------------------------


def test_queue_is_encrypted_named_and_keeps_messages_longer_than_any_retry(own_alb_run):
    queue = _queue(own_alb_run).plain
    assert queue["name"] == naming.queue_name("dev", DOMAIN)
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == QUEUE_RETENTION_SECONDS
    # Even retried at the longest delay every time, a message is dead-lettered before it expires.
    longest_delay = max(QUEUE_VISIBILITY_TIMEOUT_SECONDS, worker.BACKOFF_CAP_S)
    assert queue["messageRetentionSeconds"] > MAX_RECEIVE_COUNT * longest_delay


def test_queue_visibility_timeout_is_at_least_six_worker_timeouts(own_alb_run):
    visibility = _queue(own_alb_run).plain["visibilityTimeoutSeconds"]
    worker_timeout = own_alb_run.worker(FUNCTION).plain["timeout"]
    assert worker_timeout == WORKER_TIMEOUT_SECONDS
    assert visibility == QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert visibility >= 6 * worker_timeout


def test_queue_redrives_to_the_dead_letter_queue_after_max_receive_count(own_alb_run):
    redrive = json.loads(_queue(own_alb_run).plain["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": _dead_letter_queue(own_alb_run).outputs["arn"],
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }


def test_dead_letter_queue_is_encrypted_and_keeps_messages_14_days(own_alb_run):
    dead_letters = _dead_letter_queue(own_alb_run).plain
    assert dead_letters["name"] == naming.dead_letter_queue_name("dev", DOMAIN)
    assert dead_letters["sqsManagedSseEnabled"] is True
    assert dead_letters["messageRetentionSeconds"] == DEAD_LETTER_RETENTION_SECONDS == 1_209_600
    assert "redrivePolicy" not in dead_letters  # the end of the line


def test_dead_letter_queue_accepts_only_the_sites_queue(own_alb_run):
    allow = own_alb_run.one(REDRIVE_ALLOW).plain
    assert allow["queueUrl"] == _dead_letter_queue(own_alb_run).outputs["url"]
    assert json.loads(allow["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [_queue(own_alb_run).outputs["arn"]],
    }


# -- the retry span ----------------------------------------------------------------------------


def _backoff_s(receive_count: int, factor: float) -> float:
    """The worker's transient backoff as the contract states it: min(900, 30 * 2**(n - 1)) s,
    made up to 20 % shorter by jitter (factor 0.8-1.0)."""
    return min(900, 30 * 2 ** (receive_count - 1)) * factor


@pytest.mark.parametrize("factor", [0.8, 1.0])
def test_retries_span_one_to_four_hours_before_dead_lettering(factor):
    # Receive n fails transiently and hides the message for _backoff_s(n); the receive after
    # the MAX_RECEIVE_COUNT-th moves it to the dead-letter queue instead.
    last_attempt_s = sum(_backoff_s(n, factor) for n in range(1, MAX_RECEIVE_COUNT))
    dead_lettered_s = last_attempt_s + _backoff_s(MAX_RECEIVE_COUNT, factor)
    assert 3600 <= last_attempt_s < dead_lettered_s <= 4 * 3600


@pytest.mark.parametrize(("factor", "jitter"), [(1.0, 0.0), (0.8, 1.0)])
def test_the_workers_backoff_is_the_one_the_span_was_computed_with(factor, jitter):
    # function.worker's jitter argument is the share of the 20 % taken off: 0 -> none, 1 -> all.
    for n in range(1, MAX_RECEIVE_COUNT + 1):
        assert worker.visibility_timeout_s(n, jitter) == pytest.approx(_backoff_s(n, factor), abs=1)


def test_a_crashing_worker_also_dead_letters_within_four_hours():
    # A failed invocation changes no visibility: the batch returns after the queue's timeout.
    dead_lettered_s = MAX_RECEIVE_COUNT * QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert 3600 <= dead_lettered_s <= 4 * 3600


# -- the worker --------------------------------------------------------------------------------


def test_worker_runs_the_worker_handler_from_the_same_package(own_alb_run):
    ingest = own_alb_run.ingest(FUNCTION)
    function = own_alb_run.worker(FUNCTION)
    assert function.plain["handler"] == "function.worker.handler"
    assert function.plain["name"] == naming.worker_function_name("dev", DOMAIN)
    assert function.plain["name"] != ingest.plain["name"]
    assert function.plain["runtime"] == ingest.plain["runtime"] == "python3.13"
    assert function.plain["architectures"] == ingest.plain["architectures"] == ["arm64"]
    assert set(function.inputs["code"].assets) == set(ingest.inputs["code"].assets)
    assert "function/worker.py" in function.inputs["code"].assets


def test_worker_environment_is_accepted_by_the_workers_own_loader(own_alb_run):
    variables = own_alb_run.worker(FUNCTION).plain["environment"]["variables"]
    loaded = webhook_settings.load_worker_settings(variables)
    assert loaded.distribution_ids == ("E2EXAMPLE1ABCD",)
    assert loaded.dead_letter_queue_url == _dead_letter_queue(own_alb_run).outputs["url"]
    assert not any(TEST_TOKEN in v or TEST_JWS_SECRET in v for v in variables.values())


def test_worker_environment_lists_every_distribution(china_run):
    variables = china_run.worker(FUNCTION).plain["environment"]["variables"]
    loaded = webhook_settings.load_worker_settings(variables)
    assert loaded.distribution_ids == ("E2EXAMPLE1ABCD", "E3SECOND0WXYZ")


def test_worker_logs_json_to_its_own_log_group_created_first(own_alb_run):
    function = own_alb_run.worker(FUNCTION)
    log_group = own_alb_run.worker(LOG_GROUP)
    expected = f"/aws/lambda/{function.plain['name']}"
    assert log_group.plain["name"] == expected
    assert log_group.plain["retentionInDays"] == 14
    assert log_group.plain["name"] != own_alb_run.ingest(LOG_GROUP).plain["name"]
    assert function.plain["loggingConfig"] == {"logFormat": "JSON", "logGroup": expected}
    assert log_group.urn in function.dependencies
    assert own_alb_run.worker(POLICY).urn in function.dependencies


def test_worker_has_its_own_role_assumable_by_lambda_only(own_alb_run):
    role = own_alb_run.worker(ROLE)
    assert role.id != own_alb_run.ingest(ROLE).id
    assert json.loads(role.plain["assumeRolePolicy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert not role.plain.get("managedPolicyArns")
    assert own_alb_run.worker(FUNCTION).plain["role"] == role.outputs["arn"]
    assert own_alb_run.worker(POLICY).plain["role"] == role.id


def test_event_source_mapping_feeds_queue_batches_to_the_worker(own_alb_run):
    mapping = own_alb_run.one(ESM)
    assert mapping.plain["eventSourceArn"] == _queue(own_alb_run).outputs["arn"]
    assert mapping.plain["functionName"] == own_alb_run.worker(FUNCTION).outputs["arn"]
    assert mapping.plain["batchSize"] == BATCH_SIZE <= 10
    assert mapping.plain["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.plain["enabled"] is True
    assert "maximumBatchingWindowInSeconds" not in mapping.plain  # batch size <= 10 needs none
    # Lambda checks the role's SQS permissions when it creates the mapping.
    assert own_alb_run.worker(POLICY).urn in mapping.dependencies


# -- the worker's policy, statement by statement -----------------------------------------------


def test_worker_policy_has_exactly_four_purposes(own_alb_run):
    statements = _worker_policy(own_alb_run)["Statement"]
    assert [s["Sid"] for s in statements] == [
        "WriteOwnLogs",
        "InvalidateSiteDistributions",
        "ConsumeInvalidationQueue",
        "SetAsidePermanentFailures",
    ]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in statement["Resource"]
        assert not any(a.endswith("*") for a in statement["Action"])


def test_worker_policy_writes_logs_only_to_its_own_log_group(own_alb_run):
    statement = _statements(_worker_policy(own_alb_run))["WriteOwnLogs"]
    log_group_arn = own_alb_run.worker(LOG_GROUP).outputs["arn"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == [log_group_arn, f"{log_group_arn}:*"]


def test_worker_policy_invalidates_only_the_sites_distributions(own_alb_run):
    statement = _statements(_worker_policy(own_alb_run))["InvalidateSiteDistributions"]
    assert statement["Action"] == ["cloudfront:CreateInvalidation"]
    assert statement["Resource"] == [
        f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/E2EXAMPLE1ABCD"
    ]


def test_worker_policy_consumes_only_the_invalidation_queue(own_alb_run):
    statement = _statements(_worker_policy(own_alb_run))["ConsumeInvalidationQueue"]
    assert statement["Action"] == [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    ]
    assert statement["Resource"] == [_queue(own_alb_run).outputs["arn"]]


def test_worker_policy_sends_only_to_the_dead_letter_queue(own_alb_run):
    statement = _statements(_worker_policy(own_alb_run))["SetAsidePermanentFailures"]
    assert statement["Action"] == ["sqs:SendMessage"]
    assert statement["Resource"] == [_dead_letter_queue(own_alb_run).outputs["arn"]]


def test_ingest_policy_sends_only_to_the_queue_and_never_invalidates(own_alb_run):
    statements = _statements(_ingest_policy(own_alb_run))
    assert set(statements) == {"WriteOwnLogs", "ReadWebhookSecrets", "QueueInvalidations"}
    assert statements["QueueInvalidations"]["Action"] == ["sqs:SendMessage"]
    assert statements["QueueInvalidations"]["Resource"] == [_queue(own_alb_run).outputs["arn"]]
    assert statements["ReadWebhookSecrets"]["Action"] == ["ssm:GetParameter"]
    log_group_arn = own_alb_run.ingest(LOG_GROUP).outputs["arn"]
    assert statements["WriteOwnLogs"]["Resource"] == [log_group_arn, f"{log_group_arn}:*"]


# -- the partition comes from the provider -----------------------------------------------------


def test_distribution_arns_take_the_partition_from_the_provider(china_run):
    assert "aws:index/getPartition:getPartition" in dict(china_run.invokes)
    statement = _statements(_worker_policy(china_run))["InvalidateSiteDistributions"]
    assert statement["Resource"] == [
        f"arn:aws-cn:cloudfront::{ACCOUNT_ID}:distribution/E2EXAMPLE1ABCD",
        f"arn:aws-cn:cloudfront::{ACCOUNT_ID}:distribution/E3SECOND0WXYZ",
    ]


def test_no_policy_names_the_aws_partition_in_another_partition(china_run):
    for policy in (_worker_policy(china_run), _ingest_policy(china_run)):
        resources = [r for s in policy["Statement"] for r in s["Resource"]]
        assert resources
        assert all(r.startswith("arn:aws-cn:") for r in resources), resources


# -- alarms ------------------------------------------------------------------------------------


def test_five_alarms_notify_the_topic_when_they_fire_and_clear(own_alb_run):
    alarms = _alarms(own_alb_run)
    assert set(alarms) == {
        "dead-letters",
        "queue-stuck",
        "ingest-5xx",
        "ingest-errors",
        "worker-errors",
    }
    topic_arn = _topic_arn(own_alb_run)
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [topic_arn]
        assert alarm["okActions"] == [topic_arn]
        assert alarm["actionsEnabled"] is True
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert (alarm["period"], alarm["evaluationPeriods"]) == (60, 1)
        assert alarm["alarmDescription"]


def test_dead_letter_alarm_fires_on_one_visible_message(own_alb_run):
    alarm = _alarms(own_alb_run)["dead-letters"]
    assert (alarm["namespace"], alarm["metricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm["dimensions"] == {"QueueName": _dead_letter_queue(own_alb_run).plain["name"]}
    assert (alarm["statistic"], alarm["threshold"]) == ("Maximum", 1)


def test_queue_alarm_fires_when_the_oldest_message_is_15_minutes_old(own_alb_run):
    alarm = _alarms(own_alb_run)["queue-stuck"]
    assert (alarm["namespace"], alarm["metricName"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
    )
    assert alarm["dimensions"] == {"QueueName": _queue(own_alb_run).plain["name"]}
    assert alarm["statistic"] == "Maximum"
    assert alarm["threshold"] == OLDEST_MESSAGE_ALARM_SECONDS == 900


def test_ingest_5xx_are_counted_from_its_json_log_and_alarm_at_one(own_alb_run):
    metric_filter = own_alb_run.one(METRIC_FILTER).plain
    ingest_log_group = own_alb_run.ingest(LOG_GROUP).plain["name"]
    assert metric_filter["logGroupName"] == ingest_log_group
    assert metric_filter["pattern"] == SERVER_ERROR_PATTERN == "{ $.status_code >= 500 }"
    ingest_name = own_alb_run.outputs["function_name"]
    assert metric_filter["metricTransformation"] == {
        "name": f"IngestServerErrors-{ingest_name}",
        "namespace": "NetlifyCloudFrontWebhook",
        "value": "1",
        "unit": "Count",
    }
    alarm = _alarms(own_alb_run)["ingest-5xx"]
    assert (alarm["namespace"], alarm["metricName"]) == (
        METRIC_NAMESPACE,
        f"IngestServerErrors-{ingest_name}",
    )
    assert "dimensions" not in alarm  # the metric is per site by its name
    assert (alarm["statistic"], alarm["threshold"]) == ("Sum", 1)


def test_ingest_error_metrics_of_two_stacks_do_not_mix():
    other = _ok(run_program(stack="prod"))
    name = other.one(METRIC_FILTER).plain["metricTransformation"]["name"]
    assert name == f"IngestServerErrors-{naming.function_name('prod', DOMAIN)}"
    assert name != f"IngestServerErrors-{naming.function_name('dev', DOMAIN)}"


def test_worker_errors_alarm_watches_the_workers_lambda_errors(own_alb_run):
    alarm = _alarms(own_alb_run)["worker-errors"]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["dimensions"] == {"FunctionName": own_alb_run.worker(FUNCTION).plain["name"]}
    assert (alarm["statistic"], alarm["threshold"]) == ("Sum", 1)


def test_ingest_errors_alarm_watches_the_ingests_lambda_errors(own_alb_run):
    alarm = _alarms(own_alb_run)["ingest-errors"]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["dimensions"] == {"FunctionName": own_alb_run.outputs["function_name"]}
    assert (alarm["statistic"], alarm["threshold"]) == ("Sum", 1)


def test_alarm_resources_are_children_of_the_alarms_component(own_alb_run):
    component = own_alb_run.one(ALARMS_COMPONENT).urn
    for type_ in (ALARM, METRIC_FILTER, TOPIC):
        assert all(r.parent == component for r in own_alb_run.of_type(type_))


# -- the alarm topic ---------------------------------------------------------------------------


def test_stack_creates_its_own_topic_without_subscriptions_by_default(own_alb_run):
    topic = own_alb_run.one(TOPIC)
    assert topic.plain["name"] == naming.alarm_topic_name("dev", DOMAIN)
    assert own_alb_run.outputs["alarm_topic_arn"] == topic.outputs["arn"]
    assert own_alb_run.of_type(SUBSCRIPTION) == []


def test_a_shared_topic_is_used_as_given_and_none_is_created(shared_topic_run):
    assert shared_topic_run.of_type(TOPIC) == []
    assert shared_topic_run.of_type(SUBSCRIPTION) == []
    assert shared_topic_run.outputs["alarm_topic_arn"] == SHARED_TOPIC_ARN
    alarms = _alarms(shared_topic_run)
    assert len(alarms) == 5
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [SHARED_TOPIC_ARN]
        assert alarm["okActions"] == [SHARED_TOPIC_ARN]


def test_alarm_email_subscribes_the_address_to_the_stacks_topic(email_run):
    subscription = email_run.one(SUBSCRIPTION).plain
    assert subscription == {
        "topic": _topic_arn(email_run),
        "protocol": "email",
        "endpoint": ALARM_EMAIL,
    }


# -- the new config keys -----------------------------------------------------------------------


def _dev(**overrides: str) -> dict[str, str]:
    values, _ = dev_config()
    values["webhookToken"] = TEST_TOKEN
    values.update(overrides)
    return values


def test_alarm_keys_default_to_not_set():
    defaults = schema_defaults()
    assert (defaults["alarmTopicArn"], defaults["alarmEmail"]) == ("", "")
    settings = parse_site_config(_dev())
    assert (settings.alarm_topic_arn, settings.alarm_email) == (None, None)


@pytest.mark.parametrize(
    "arn",
    [
        SHARED_TOPIC_ARN,
        f"arn:aws-cn:sns:cn-north-1:{ACCOUNT_ID}:fleet_alarms-1",
        f"arn:aws-us-gov:sns:us-gov-west-1:{ACCOUNT_ID}:{'t' * 256}",
    ],
)
def test_sns_topic_arns_of_every_partition_are_accepted(arn):
    assert parse_site_config(_dev(alarmTopicArn=arn)).alarm_topic_arn == arn


@pytest.mark.parametrize("email", [ALARM_EMAIL, "first.last+alerts@mail.example.co.uk"])
def test_plain_email_addresses_are_accepted(email):
    assert parse_site_config(_dev(alarmEmail=email)).alarm_email == email


BAD_ALARM_VALUES = [
    # (key, overrides, fragment of the problem, fragment of what is allowed)
    ("alarmTopicArn", {"alarmTopicArn": "ops-alarms"}, "not an SNS topic ARN", "arn:<partition>"),
    (
        "alarmTopicArn",
        {"alarmTopicArn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:ops-alarms"},
        "not an SNS topic ARN",
        ":sns:",
    ),
    (
        "alarmTopicArn",
        {"alarmTopicArn": f"arn:aws:sns:{REGION}:12345:ops-alarms"},
        "not an SNS topic ARN",
        "12-digit account",
    ),
    (
        "alarmTopicArn",
        {"alarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:ops alarms"},
        "not an SNS topic ARN",
        "<topic name>",
    ),
    (
        "alarmTopicArn",
        {"alarmTopicArn": f"{SHARED_TOPIC_ARN}.fifo"},
        "FIFO topic",
        "standard topic",
    ),
    ("alarmEmail", {"alarmEmail": "ops.example.com"}, "not an email address", "one @"),
    ("alarmEmail", {"alarmEmail": "ops@@example.com"}, "not an email address", "one @"),
    ("alarmEmail", {"alarmEmail": "ops team@example.com"}, "not an email address", "no blanks"),
    ("alarmEmail", {"alarmEmail": "ops@localhost"}, "not an email address", "domain.tld"),
    (
        "alarmEmail",
        {"alarmEmail": "o" * 243 + "@example.com"},  # 255 characters
        "not an email address",
        "at most 254",
    ),
    (
        "alarmEmail",
        {"alarmEmail": ALARM_EMAIL, "alarmTopicArn": SHARED_TOPIC_ARN},
        "set together with alarmTopicArn",
        "the stack's own topic",
    ),
]


@pytest.mark.parametrize(
    ("key", "overrides", "problem", "allowed"),
    BAD_ALARM_VALUES,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_ALARM_VALUES)],
)
def test_bad_alarm_value_is_refused_naming_key_problem_and_allowed(
    key, overrides, problem, allowed
):
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_dev(**overrides))
    assert caught.value.key == key
    stated_problem, _, stated_allowed = str(caught.value).partition("; allowed: ")
    assert stated_problem.startswith(f"netlify-cloudfront-webhook:{key}: ")
    assert problem in stated_problem
    assert allowed in stated_allowed


def test_email_at_the_length_limit_is_accepted():
    email = "o" * 242 + "@example.com"  # 254 characters
    assert parse_site_config(_dev(alarmEmail=email)).alarm_email == email


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"alarmTopicArn": "not-an-arn"}, "alarmTopicArn"),
        ({"alarmEmail": "nobody"}, "alarmEmail"),
        ({"alarmEmail": ALARM_EMAIL, "alarmTopicArn": SHARED_TOPIC_ARN}, "alarmEmail"),
    ],
)
def test_bad_alarm_value_stops_the_program_before_any_resource(overrides, key):
    run = run_program(overrides)
    cause = run.error.__cause__ if run.error is not None else None
    assert isinstance(cause, ConfigError), run.error
    assert cause.key == key
    assert run.resources == []
    assert run.invokes == []


# -- outputs -----------------------------------------------------------------------------------


NEW_OUTPUTS = (
    "queue_url",
    "dead_letter_queue_url",
    "worker_function_name",
    "worker_log_group_name",
    "alarm_topic_arn",
    "region",
)


@pytest.mark.parametrize("run_name", ["own_alb_run", "shared_run"])
def test_pipeline_outputs_are_present_and_not_secret(request, run_name):
    run = request.getfixturevalue(run_name)
    for name in NEW_OUTPUTS:
        assert isinstance(run.outputs[name], str) and run.outputs[name], name
        assert name not in run.secret_outputs
    leaks = [s for s in plain_strings([run.outputs[n] for n in NEW_OUTPUTS]) if TEST_TOKEN in s]
    assert leaks == []


def test_pipeline_outputs_name_the_resources_created(own_alb_run):
    outputs = own_alb_run.outputs
    assert outputs["queue_url"] == _queue(own_alb_run).outputs["url"]
    assert outputs["dead_letter_queue_url"] == _dead_letter_queue(own_alb_run).outputs["url"]
    assert outputs["queue_url"].endswith(f"/{ACCOUNT_ID}/{naming.queue_name('dev', DOMAIN)}")
    assert outputs["worker_function_name"] == own_alb_run.worker(FUNCTION).plain["name"]
    assert outputs["worker_log_group_name"] == "/aws/lambda/" + outputs["worker_function_name"]
    assert outputs["worker_log_group_name"] == own_alb_run.worker(LOG_GROUP).plain["name"]
    # The ingest's outputs stay the ingest's.
    assert outputs["function_name"] == own_alb_run.ingest(FUNCTION).plain["name"]
    assert outputs["log_group_name"] == own_alb_run.ingest(LOG_GROUP).plain["name"]


def test_region_output_is_the_providers_region(own_alb_run):
    assert own_alb_run.outputs["region"] == REGION
    elsewhere = dataclasses.replace(load_stack_files("dev"), provider={"aws:region": "eu-west-2"})
    run = _ok(run_program(stack_files=elsewhere))
    assert run.outputs["region"] == "eu-west-2"
    assert run.outputs["queue_url"].startswith("https://sqs.eu-west-2.")
