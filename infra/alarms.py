"""The alarms of one site's pipeline, and the SNS topic they notify.

Five conditions need an operator: a message in the dead-letter queue, a queued message older
than OLDEST_MESSAGE_ALARM_SECONDS, the ingest answering 5xx, the ingest itself failing (a crash
or a timeout, which the ALB answers with a bare 502 that no log line's ``status_code`` shows),
and the worker failing. Each alarm
notifies the topic when it fires and again when it clears (so a mailbox shows that the redrive
or the fix worked, at no extra cost); no data counts as "not breaching" (an idle site has no
SQS or Lambda data points).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.pipeline import OLDEST_MESSAGE_ALARM_SECONDS
from infra.settings import SiteSettings

# Our own metrics (the ingest's 5xx answers, counted from its log) live here.
METRIC_NAMESPACE = "NetlifyCloudFrontWebhook"
# The ingest logs one JSON line per request; Lambda's JSON log format puts the `extra` fields
# (`status_code`, `outcome`) at the top level of the entry.
SERVER_ERROR_PATTERN = "{ $.status_code >= 500 }"
# SQS and Lambda publish these metrics every minute; one breaching minute is enough to alarm.
PERIOD_SECONDS = 60
COMPARISON = "GreaterThanOrEqualToThreshold"
TREAT_MISSING_DATA = "notBreaching"


def ingest_error_metric_name(function_name: str) -> str:
    """One metric per site, named after its ingest.

    A metric filter's dimensions can only take values from fields of the log event, and the
    ingest's lines carry no field naming the site on every answer (``site_id`` appears only once
    the body was parsed). A per-site metric name keeps every site's count apart in the shared
    namespace without one.
    """
    return f"IngestServerErrors-{function_name}"


class Alarms(pulumi.ComponentResource):
    """The alarm topic (own or given by ``alarmTopicArn``), an optional email subscription, the
    ingest's 5xx metric filter, and the five alarms."""

    def __init__(
        self,
        name: str,
        *,
        settings: SiteSettings,
        stack: str,
        ingest_function_name: pulumi.Input[str],
        ingest_log_group_name: pulumi.Input[str],
        queue_name: pulumi.Input[str],
        dead_letter_queue_name: pulumi.Input[str],
        worker_function_name: pulumi.Input[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._name = name
        self._settings = settings
        self._stack = stack
        self._tags = dict(tags)

        self.topic: aws.sns.Topic | None = None
        if settings.alarm_topic_arn:
            # A shared topic: its policy and subscriptions are managed where it is.
            self.topic_arn: pulumi.Output[str] = pulumi.Output.from_input(settings.alarm_topic_arn)
        else:
            # Not encrypted: CloudWatch can publish to an encrypted topic only through a
            # customer managed KMS key whose policy lets CloudWatch use it, and a notification
            # carries alarm names and metric values, nothing secret. SNS's default topic policy
            # lets this account's services, CloudWatch alarms included, publish.
            self.topic = aws.sns.Topic(
                f"{name}-topic",
                name=naming.alarm_topic_name(stack, settings.domain),
                display_name=f"Netlify webhook {settings.domain}"[:100],
                tags=self._tags,
                opts=child,
            )
            self.topic_arn = self.topic.arn
        self.email_subscription: aws.sns.TopicSubscription | None = None
        if settings.alarm_email and self.topic is not None:
            # Pending until the recipient follows the link SNS mails.
            self.email_subscription = aws.sns.TopicSubscription(
                f"{name}-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=settings.alarm_email,
                opts=child,
            )

        self.dead_letter_alarm = self._alarm(
            "dead-letters",
            description=(
                "A message is in the dead-letter queue: an invalidation that can never succeed "
                "(bad message, distribution not allowed, access denied) or that failed for "
                "hours. See the runbook's Pipeline section; fix the cause, then redrive."
            ),
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": dead_letter_queue_name},
            statistic="Maximum",
            threshold=1,
        )
        self.oldest_message_alarm = self._alarm(
            "queue-stuck",
            description=(
                f"The oldest queued invalidation is {OLDEST_MESSAGE_ALARM_SECONDS} s old or more: "
                "the worker is not keeping up or CloudFront keeps refusing. Check the worker's "
                "log group."
            ),
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": queue_name},
            statistic="Maximum",
            threshold=OLDEST_MESSAGE_ALARM_SECONDS,
        )

        metric_name = pulumi.Output.from_input(ingest_function_name).apply(ingest_error_metric_name)
        self.server_error_filter = aws.cloudwatch.LogMetricFilter(
            f"{name}-ingest-5xx",
            name=pulumi.Output.concat(ingest_function_name, "-server-errors"),
            log_group_name=ingest_log_group_name,
            pattern=SERVER_ERROR_PATTERN,
            # No default value: the metric has data only when a 5xx is logged (missing data is
            # not breaching), so an idle site publishes nothing.
            metric_transformation={
                "name": metric_name,
                "namespace": METRIC_NAMESPACE,
                "value": "1",
                "unit": "Count",
            },
            opts=child,
        )
        self.server_error_alarm = self._alarm(
            "ingest-5xx",
            description=(
                "The ingest answered Netlify with a 5xx: a deploy may not have been queued "
                "(Netlify's retries are not documented). Check the ingest's log group."
            ),
            namespace=METRIC_NAMESPACE,
            metric_name=metric_name,
            dimensions=None,
            statistic="Sum",
            threshold=1,
            depends_on=[self.server_error_filter],
        )
        self.ingest_error_alarm = self._alarm(
            "ingest-errors",
            description=(
                "The ingest failed an invocation (crash or timeout): the ALB answered Netlify "
                "with a bare 502 and the deploy was not queued. Check the ingest's log group."
            ),
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": ingest_function_name},
            statistic="Sum",
            threshold=1,
        )
        self.worker_error_alarm = self._alarm(
            "worker-errors",
            description=(
                "The worker failed an invocation (crash or timeout): the whole batch comes back "
                "after the queue's visibility timeout. Check the worker's log group."
            ),
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": worker_function_name},
            statistic="Sum",
            threshold=1,
        )
        self.register_outputs({"alarm_topic_arn": self.topic_arn})

    def _alarm(
        self,
        purpose: str,
        *,
        description: str,
        namespace: str,
        metric_name: pulumi.Input[str],
        dimensions: Mapping[str, pulumi.Input[str]] | None,
        statistic: str,
        threshold: float,
        depends_on: list[pulumi.Resource] | None = None,
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{purpose}",
            name=naming.alarm_name(self._stack, self._settings.domain, purpose),
            alarm_description=description,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dict(dimensions) if dimensions else None,
            statistic=statistic,
            period=PERIOD_SECONDS,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=threshold,
            comparison_operator=COMPARISON,
            treat_missing_data=TREAT_MISSING_DATA,
            actions_enabled=True,
            alarm_actions=[self.topic_arn],
            ok_actions=[self.topic_arn],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
