"""Section 3, the pipeline, against moto: queue depth, dead letters, alarms and the redrive."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from function.invalidation_message import new_message
from function.webhook_settings import caller_reference
from infra.pipeline import MAX_RECEIVE_COUNT, OLDEST_MESSAGE_ALARM_SECONDS
from runbook_lib.aws import AwsClients
from runbook_lib.config import ENVIRONMENT, PULUMI, StackOutputs, load_config
from runbook_lib.logs import worker_errors
from runbook_lib.pipeline import (
    ALARM_STATE,
    ERROR_CODE_ATTRIBUTE,
    PipelineStatus,
    QueueDepth,
    age_text,
    oldest_message_age,
    peek_dead_letters,
    pipeline_status,
    queue_depth,
    redrive,
)
from runbook_lib.summary import recap, run_summary
from runbook_lib.where import where_am_i

REGION = "us-east-1"
FUNCTION = "ncw-dev-example-com"
WORKER = f"{FUNCTION}-worker"
QUEUE = f"{FUNCTION}-invalidations"
DEAD_LETTERS = f"{FUNCTION}-dead-letters"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:ncw-alarms"


@pytest.fixture
def sqs(moto_aws):
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def cloudwatch(moto_aws):
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def queues(sqs):
    """The stack's two queues, with the program's redrive policy."""
    dead = sqs.create_queue(QueueName=DEAD_LETTERS)["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    main = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            )
        },
    )["QueueUrl"]
    return main, dead


def _environment(main: str | None, dead: str | None, topic: str | None = TOPIC) -> dict:
    env = {
        "NCW_DISTRIBUTION_IDS": "EAAA1,EBBB2",
        "NCW_WEBHOOK_URL": "http://127.0.0.1:9/webhooks/netlify?token=x",
        "NCW_FUNCTION_NAME": FUNCTION,
        "NCW_WORKER_FUNCTION_NAME": WORKER,
        "AWS_DEFAULT_REGION": REGION,
    }
    for name, value in (
        ("NCW_QUEUE_URL", main),
        ("NCW_DEAD_LETTER_QUEUE_URL", dead),
        ("NCW_ALARM_TOPIC_ARN", topic),
    ):
        if value:
            env[name] = value
    return env


def _config(main: str | None, dead: str | None, topic: str | None = TOPIC):
    return load_config(
        "dev", environ=_environment(main, dead, topic), stack_outputs=StackOutputs(None, "n/a")
    )


def _body(deploy_id: str, distribution_id: str = "EAAA1") -> str:
    paths = ["/*"]
    return new_message(
        deploy_id=deploy_id,
        site_id="site-1",
        event="deploy_created",
        context="production",
        distribution_id=distribution_id,
        paths=paths,
        caller_reference=caller_reference(deploy_id, paths),
    ).to_body()


def _dead_letter(sqs, dead: str, body: str, error_code: str | None) -> None:
    attributes = (
        {ERROR_CODE_ATTRIBUTE: {"DataType": "String", "StringValue": error_code}}
        if error_code
        else {}
    )
    sqs.send_message(QueueUrl=dead, MessageBody=body, MessageAttributes=attributes)


def _depth(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _drain(sqs, url: str) -> list[dict]:
    """Every visible message of ``url`` (received, not deleted): what the queue holds."""
    found: dict[str, dict] = {}
    for _call in range(20):
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=300,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        found.update((message["MessageId"], message) for message in batch)
    return list(found.values())


# ---------------------------------------------------------------------------- configuration


def test_pipeline_settings_come_from_the_stack_outputs():
    outputs = {
        "webhook_url": "https://lambda.example.com/webhooks/netlify?token=t",
        "distribution_ids": ["EOUT1"],
        "queue_url": "https://sqs.eu-west-2.amazonaws.com/123456789012/q",
        "dead_letter_queue_url": "https://sqs.eu-west-2.amazonaws.com/123456789012/dlq",
        "worker_function_name": "w",
        "worker_log_group_name": "/aws/lambda/w-group",
        "alarm_topic_arn": "arn:aws:sns:eu-west-2:123456789012:t",
        "region": "eu-west-2",
    }
    config = load_config(
        "prod",
        environ={"AWS_REGION": "us-east-1", "NCW_QUEUE_URL": "https://other/1/x"},
        stack_outputs=StackOutputs(outputs, "pulumi"),
    )
    assert config.queue_url == outputs["queue_url"]
    assert config.dead_letter_queue_url == outputs["dead_letter_queue_url"]
    assert config.worker_function_name == "w"
    assert config.worker_log_group == "/aws/lambda/w-group"
    assert config.alarm_topic_arn == outputs["alarm_topic_arn"]
    assert config.region == "eu-west-2"  # the stack's region beats the shell's
    assert config.sources["queue_url"] == f"{PULUMI} queue_url"
    assert config.sources["region"] == f"{PULUMI} region"
    assert config.pipeline_missing() == []


def test_pipeline_settings_come_from_the_environment():
    env = {
        "NCW_QUEUE_URL": "http://127.0.0.1:5000/123456789012/q",
        "NCW_DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:5000/123456789012/dlq",
        "NCW_WORKER_FUNCTION_NAME": "ncw-dev-worker",
        "NCW_ALARM_TOPIC_ARN": TOPIC,
        "NCW_REGION": "eu-central-1",
        "AWS_REGION": "us-west-2",
    }
    config = load_config("dev", environ=env, stack_outputs=StackOutputs(None, "n/a"))
    assert config.queue_url == env["NCW_QUEUE_URL"]
    assert config.dead_letter_queue_url == env["NCW_DEAD_LETTER_QUEUE_URL"]
    assert config.worker_log_group == "/aws/lambda/ncw-dev-worker"  # derived from the name
    assert config.region == "eu-central-1"
    assert config.sources["alarm_topic_arn"] == f"{ENVIRONMENT} NCW_ALARM_TOPIC_ARN"
    assert config.stack_account == "123456789012"  # from the topic's ARN


def test_where_am_i_lists_the_pipeline_and_its_sources(moto_aws):
    config = _config("http://q/123456789012/q", None)
    table = where_am_i(config).table().set_index("what")
    assert table.loc["queue", "value"] == "http://q/123456789012/q"
    assert table.loc["queue", "source"] == f"{ENVIRONMENT} NCW_QUEUE_URL"
    assert table.loc["dead-letter queue", "value"] == "-"
    assert table.loc["alarm topic", "value"] == TOPIC


# ---------------------------------------------------------------------------- depth


def test_queue_depth_counts_waiting_in_flight_and_delayed(sqs, cloudwatch, queues):
    main, _dead = queues
    for index in range(4):
        sqs.send_message(QueueUrl=main, MessageBody=_body(f"d{index}"))
    sqs.send_message(QueueUrl=main, MessageBody=_body("later"), DelaySeconds=600)
    sqs.receive_message(QueueUrl=main, MaxNumberOfMessages=1, VisibilityTimeout=300)
    depth = queue_depth(sqs, cloudwatch, main)
    assert (depth.visible, depth.in_flight, depth.delayed) == (3, 1, 1)
    assert depth.error is None
    # moto publishes no SQS metrics: the age is unknown, and said to be.
    assert depth.oldest_age_s is None and "no data" in depth.oldest_note


def test_oldest_message_age_is_the_latest_datapoint(cloudwatch):
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes_ago, age in ((12, 100.0), (2, 1000.0), (7, 400.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": QUEUE}],
                    "Timestamp": now - timedelta(minutes=minutes_ago),
                    "Value": age,
                    "Unit": "Seconds",
                }
            ],
        )
    age, note = oldest_message_age(cloudwatch, QUEUE, now=now)
    assert age == 1000.0 and "CloudWatch at" in note
    assert oldest_message_age(cloudwatch, "another-queue", now=now)[0] is None


def test_a_stuck_queue_fails_the_section():
    stuck = QueueDepth("queue", f"http://q/123456789012/{QUEUE}", 1, 0, 0)
    stuck.oldest_age_s = OLDEST_MESSAGE_ALARM_SECONDS + 60
    status = PipelineStatus(queue=stuck)
    assert status.verdict == "FAIL"
    assert "the oldest queued message is 16 min old" in status.markdown()


# ---------------------------------------------------------------------------- dead letters


def _exhaust_retries(sqs, main: str, body: str) -> None:
    """What SQS does to a message the worker keeps failing: MAX_RECEIVE_COUNT receives, then
    the next receive moves it to the dead-letter queue (without an error_code)."""
    sqs.send_message(QueueUrl=main, MessageBody=body)
    for _receive in range(MAX_RECEIVE_COUNT + 1):
        sqs.receive_message(QueueUrl=main, MaxNumberOfMessages=1, VisibilityTimeout=0)


def test_dead_letters_are_listed_with_deploy_distribution_error_and_receive_count(
    sqs, cloudwatch, queues
):
    main, dead = queues
    _dead_letter(sqs, dead, _body("deploy-denied", "EBBB2"), "AccessDenied")
    _dead_letter(sqs, dead, "not json", "MessageError")
    _exhaust_retries(sqs, main, _body("deploy-busy"))
    assert _depth(sqs, dead) == 3 and _depth(sqs, main) == 0

    status = pipeline_status(_config(main, dead), AwsClients(_config(main, dead)))
    table = status.dead_letters.table if status.dead_letters else None
    assert table is not None and len(table) == 3
    rows = {row["deploy"]: row for row in table.to_dict("records")}
    assert rows["deploy-denied"]["distribution"] == "EBBB2"
    assert rows["deploy-denied"]["error"] == "AccessDenied"
    assert rows["deploy-denied"]["receive count"] == 1  # the peek's own receive
    assert rows["(not an invalidation message)"]["error"] == "MessageError"
    busy = rows["deploy-busy"]
    assert busy["distribution"] == "EAAA1"
    assert ERROR_CODE_ATTRIBUTE in busy["error"] and str(MAX_RECEIVE_COUNT) in busy["error"]
    assert busy["receive count"] > MAX_RECEIVE_COUNT  # the main queue's receives, kept
    assert all(row["age"].endswith(" s") for row in rows.values())
    assert status.dead_letter_count == 3 and status.verdict == "FAIL"
    assert "3 message(s) in the dead-letter queue" in status.markdown()


def test_peeking_leaves_the_dead_letters_in_place_and_visible(sqs, queues):
    main, dead = queues
    bodies = [_body(f"deploy-{index}") for index in range(3)]
    for body in bodies:
        _dead_letter(sqs, dead, body, "NoSuchDistribution")
    config = _config(main, dead)
    for _run in range(2):
        pipeline_status(config, AwsClients(config))
    held = _drain(sqs, dead)  # visible right away: the peek made them visible again
    assert sorted(message["Body"] for message in held) == sorted(bodies)
    # Two peeks, then this read: three receives of the dead-letter copy, nothing else.
    assert {message["Attributes"]["ApproximateReceiveCount"] for message in held} == {"3"}
    assert {
        message["MessageAttributes"][ERROR_CODE_ATTRIBUTE]["StringValue"] for message in held
    } == {"NoSuchDistribution"}
    assert _depth(sqs, main) == 0


def test_the_listing_is_bounded_but_the_count_is_not(sqs, queues):
    main, dead = queues
    for index in range(25):
        _dead_letter(sqs, dead, _body(f"deploy-{index}"), "AccessDenied")
    config = _config(main, dead)
    status = pipeline_status(config, AwsClients(config), peek_limit=10)
    assert status.dead_letters is not None and status.dead_letters.listed == 10
    assert status.dead_letter_count == 25
    assert len(_drain(sqs, dead)) == 25


def test_peek_dead_letters_of_an_empty_queue_is_an_empty_table(sqs, queues):
    _main, dead = queues
    letters = peek_dead_letters(sqs, dead)
    assert letters.table.empty and letters.error is None


def test_a_missing_dead_letter_queue_is_reported(sqs, queues):
    main, _dead = queues
    gone = main.rsplit("/", 1)[0] + "/no-such-queue"
    config = _config(main, gone)
    status = pipeline_status(config, AwsClients(config))
    assert status.verdict == "WARN"
    assert "cannot read the dead-letter queue" in status.markdown()


# ---------------------------------------------------------------------------- redrive


def test_redrive_moves_the_dead_letters_back_unchanged(sqs, queues):
    main, dead = queues
    bodies = [_body(f"deploy-{index}", "EBBB2") for index in range(12)] + ["not json"]
    for body in bodies:
        _dead_letter(sqs, dead, body, "TooManyInvalidationsInProgress")
    config = _config(main, dead)
    moved = redrive(config, AwsClients(config), enabled=True)
    assert (moved.moved, moved.send_failed, moved.delete_failed) == (13, 0, 0)
    assert moved.error is None and "PASS" in moved.markdown()
    assert _depth(sqs, dead) == 0 and _drain(sqs, dead) == []
    requeued = _drain(sqs, main)
    assert Counter(message["Body"] for message in requeued) == Counter(bodies)
    assert all(not message.get("MessageAttributes") for message in requeued)


def test_redrive_switched_off_moves_nothing(sqs, queues):
    main, dead = queues
    body = _body("deploy-1")
    _dead_letter(sqs, dead, body, "AccessDenied")
    config = _config(main, dead)
    moved = redrive(config, AwsClients(config), enabled=False)
    assert moved.moved == 0 and "redrive_dead_letters = False" in moved.markdown()
    assert _depth(sqs, main) == 0
    assert [message["Body"] for message in _drain(sqs, dead)] == [body]


def test_redrive_keeps_a_message_it_could_not_send(sqs, queues):
    main, dead = queues
    for index in range(3):
        _dead_letter(sqs, dead, _body(f"deploy-{index}"), "AccessDenied")
    gone = main.rsplit("/", 1)[0] + "/no-such-queue"
    config = _config(gone, dead)
    moved = redrive(config, AwsClients(config), enabled=True)
    assert moved.moved == 0 and moved.send_failed == 1
    assert moved.error and "cannot send to the queue" in moved.error
    assert "FAIL" in moved.markdown()
    assert len(_drain(sqs, dead)) == 3  # all still there, and visible again at once


def test_redrive_without_the_queues_says_what_is_missing(moto_aws):
    config = _config(None, None)
    moved = redrive(config, AwsClients(config), enabled=True)
    assert moved.skipped and "NCW_QUEUE_URL" in moved.skipped
    assert "NCW_DEAD_LETTER_QUEUE_URL" in moved.skipped


# ---------------------------------------------------------------------------- alarms


def _alarm(cloudwatch, name: str, metric: str, dimensions: dict, topic: str = TOPIC) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SQS" if "Messages" in metric or "Age" in metric else "AWS/Lambda",
        MetricName=metric,
        Dimensions=[{"Name": key, "Value": value} for key, value in dimensions.items()],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic],
    )


def test_alarms_are_listed_with_their_state(sqs, cloudwatch, queues):
    main, dead = queues
    _alarm(
        cloudwatch,
        "dead-letters",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": DEAD_LETTERS},
    )
    _alarm(cloudwatch, "oldest", "ApproximateAgeOfOldestMessage", {"QueueName": QUEUE})
    _alarm(cloudwatch, "worker-errors", "Errors", {"FunctionName": WORKER})
    _alarm(cloudwatch, f"{FUNCTION}-5xx", "Answers5xx", {})
    # Another site's alarm on the same (fleet) topic, and one on another topic.
    _alarm(cloudwatch, "other-site", "Errors", {"FunctionName": "ncw-dev-other-org-worker"})
    _alarm(cloudwatch, "elsewhere", "Errors", {"FunctionName": WORKER}, topic=TOPIC + "-2")
    cloudwatch.set_alarm_state(
        AlarmName="dead-letters", StateValue=ALARM_STATE, StateReason="1 message waiting"
    )
    cloudwatch.set_alarm_state(
        AlarmName="oldest", StateValue="INSUFFICIENT_DATA", StateReason="no datapoints"
    )
    config = _config(main, dead)
    status = pipeline_status(config, AwsClients(config))
    assert status.alarms is not None and status.alarms.error is None
    table = status.alarms.table
    assert list(table["alarm"]) == [
        "dead-letters",
        "oldest",
        f"{FUNCTION}-5xx",
        "worker-errors",
    ]  # ALARM first, then INSUFFICIENT_DATA, then OK; by name within a state
    assert list(table["state"]) == [ALARM_STATE, "INSUFFICIENT_DATA", "OK", "OK"]
    assert table.iloc[0]["reason"] == "1 message waiting"
    assert table.iloc[0]["updated"].tzinfo is not None
    assert table.iloc[0]["metric"] == "AWS/SQS ApproximateNumberOfMessagesVisible"
    assert status.alarms.in_alarm == ["dead-letters"] and status.alarms.others == 1
    assert status.verdict == "FAIL" and "alarm(s) in ALARM: dead-letters" in status.markdown()


def test_without_a_topic_the_alarms_are_found_by_name(sqs, cloudwatch, queues):
    main, dead = queues
    _alarm(cloudwatch, f"{FUNCTION}-worker-errors", "Errors", {"FunctionName": WORKER})
    _alarm(cloudwatch, "unrelated", "Errors", {"FunctionName": "x"})
    config = _config(main, dead, topic=None)
    status = pipeline_status(config, AwsClients(config))
    assert status.alarms is not None
    assert list(status.alarms.table["alarm"]) == [f"{FUNCTION}-worker-errors"]
    assert any("NCW_ALARM_TOPIC_ARN" in item for item in status.missing)


# ---------------------------------------------------------------------------- the section


def test_missing_pipeline_outputs_are_named_not_fatal(moto_aws):
    config = _config(None, None, topic=None)
    status = pipeline_status(config, AwsClients(config))
    assert status.queue is None and status.dead_letters is None
    assert status.verdict == "WARN"
    shown = status.markdown()
    for name in ("NCW_QUEUE_URL", "NCW_DEAD_LETTER_QUEUE_URL", "NCW_ALARM_TOPIC_ARN"):
        assert name in shown
    assert "stack output `queue_url`" in shown and "pulumi up" in shown


def test_the_section_is_skipped_without_a_stack():
    config = load_config("dev", environ={}, stack_outputs=StackOutputs(None, "n/a"))
    status = pipeline_status(config, None)
    assert status.skipped and "No stack to talk to" in status.skipped
    assert status.outcome().verdict == "SKIPPED"
    assert redrive(config, None, enabled=True).skipped


def test_a_flowing_pipeline_passes(sqs, cloudwatch, queues):
    main, dead = queues
    _alarm(cloudwatch, "oldest", "ApproximateAgeOfOldestMessage", {"QueueName": QUEUE})
    cloudwatch.set_alarm_state(AlarmName="oldest", StateValue="OK", StateReason="fine")
    config = _config(main, dead)
    status = pipeline_status(config, AwsClients(config))
    assert status.verdict == "PASS", status.markdown()
    assert status.markdown().startswith("**PASS:** 0 waiting, 0 in flight; 0 dead letter(s)")
    assert [frame.empty for frame in status.tables()] == [False, True, False]


def test_the_summary_and_recap_carry_the_pipeline(sqs, cloudwatch, queues):
    main, dead = queues
    for index in range(2):
        _dead_letter(sqs, dead, _body(f"deploy-{index}"), "AccessDenied")
    _alarm(
        cloudwatch,
        "dead-letters",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": DEAD_LETTERS},
    )
    cloudwatch.set_alarm_state(AlarmName="dead-letters", StateValue=ALARM_STATE, StateReason="x")
    sqs.send_message(QueueUrl=main, MessageBody=_body("waiting"))
    config = _config(main, dead)
    aws = AwsClients(config)
    status = pipeline_status(config, aws)
    moved = redrive(config, aws, enabled=True)
    summary = json.loads(
        json.dumps(run_summary(config=config, pipeline=status, redrive_result=moved))
    )
    pipeline = summary["pipeline"]
    assert pipeline["verdict"] == "FAIL"
    assert pipeline["queue"]["visible"] == 1
    assert pipeline["dead_letters"]["count"] == 2
    assert {row["error"] for row in pipeline["dead_letters"]["rows"]} == {"AccessDenied"}
    assert pipeline["alarms"]["in_alarm"] == ["dead-letters"]
    assert pipeline["redrive"]["moved"] == 2
    assert summary["verdict"]["verdict"] == "FAIL"
    lines = recap(summary).splitlines()
    [line] = [text for text in lines if text.startswith("- pipeline:")]
    assert line.startswith("- pipeline: **FAIL**, alarm(s) in ALARM: dead-letters; 2 message(s)")
    assert "- redrive: **PASS**, moved 2 dead letter(s) back to the queue" in lines
    # The sections this test did not run are named, never "None".
    assert "- trigger: **SKIPPED**, not run" in lines and "None" not in recap(summary)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (5.9, "5 s"),
        (600, "10 min"),
        (3 * 3600 + 300, "3 h 05 min"),
        (2 * 86400 + 4 * 3600, "2 d 04 h"),
    ],
)
def test_age_text(seconds, text):
    assert age_text(seconds) == text


def test_worker_errors_name_the_worker_log_group_output(logs):
    config = _config(None, None)
    result = worker_errors(config, AwsClients(config))
    assert result.log_group == f"/aws/lambda/{WORKER}"
    assert "does not exist" in result.message and "worker_log_group_name" in result.message
