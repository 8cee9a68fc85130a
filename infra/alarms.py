"""The alarms of one site's pipeline, and the SNS topic they notify.

Five conditions need an operator: a message in the dead-letter queue, a queued message older
than OLDEST_MESSAGE_ALARM_SECONDS, the ingest answering 5xx, the ingest itself failing (a crash
or a timeout, which the ALB or the function URL answers with a bare 502 that no log line's
``status_code`` shows), and the worker failing. Each alarm notifies the topic when it fires and
again when it clears (so a mailbox shows that the redrive or the fix worked, at no extra cost);
no data counts as "not breaching" (an idle site has no SQS or Lambda data points).

With the reconciler (issue 11), three more: a publish no notification invalidated
(``MissedPublishes``), a hook of ours missing or disabled in Netlify (``UnhealthyHooks``), and
the reconciler itself failing.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.pipeline import OLDEST_MESSAGE_ALARM_SECONDS
from infra.settings import SiteSettings

# Our own metrics (the ingest's 5xx answers, counted from its log; the reconciler's findings)
# live here.
METRIC_NAMESPACE = "NetlifyCloudFrontWebhook"
# The reconciler's metrics, with one dimension: STACK_DIMENSION = the stack's name.
STACK_DIMENSION = "Stack"
MISSED_PUBLISHES_METRIC = "MissedPublishes"
UNHEALTHY_HOOKS_METRIC = "UnhealthyHooks"
NETLIFY_API_ERRORS_METRIC = "NetlifyApiErrors"
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


def reconciler_alarm_period(reconcile_minutes: int) -> int:
    """One reconciler run per period: a period of one minute would hold a finding for one
    minute and then no data, so a lasting finding would clear and fire again on every run."""
    return reconcile_minutes * 60


class Alarms(pulumi.ComponentResource):
    """The alarm topic (own or given by ``alarmTopicArn``), an optional email subscription, the
    ingest's 5xx metric filter, the five pipeline alarms and, with a reconciler
    (``reconciler_function_name``), its three."""

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
        reconciler_function_name: pulumi.Input[str] | None = None,
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
                display_name=f"Netlify webhook {naming.site_label(stack, settings.domain)}"[:100],
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
                "The ingest failed an invocation (crash or timeout): Netlify got a bare 502 "
                "and the deploy was not queued. Check the ingest's log group."
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
        self.reconciler_alarms: list[aws.cloudwatch.MetricAlarm] = []
        if reconciler_function_name is not None:
            self.reconciler_alarms = self._reconciler_alarms(reconciler_function_name)
        self.register_outputs({"alarm_topic_arn": self.topic_arn})

    def _reconciler_alarms(
        self, reconciler_function_name: pulumi.Input[str]
    ) -> list[aws.cloudwatch.MetricAlarm]:
        # Two periods with one breaching datapoint: a run landing just outside its period (the
        # schedule is not aligned with CloudWatch's periods) does not clear a lasting finding.
        period = reconciler_alarm_period(self._settings.reconcile_minutes)
        stack_dimension = {STACK_DIMENSION: self._stack}
        return [
            self._alarm(
                "missed-publishes",
                description=(
                    "The reconciler found a Netlify publish that no notification invalidated and "
                    "queued its invalidation: Netlify's notification was lost or refused. Check "
                    "the hooks and the ingest's log group."
                ),
                namespace=METRIC_NAMESPACE,
                metric_name=MISSED_PUBLISHES_METRIC,
                dimensions=stack_dimension,
                statistic="Sum",
                threshold=1,
                period=period,
                evaluation_periods=2,
            ),
            self._alarm(
                "unhealthy-hooks",
                description=(
                    "A Netlify hook of this webhook is missing or disabled: publishes are not "
                    "notified. Recreate or re-enable it (runbook, Connect Netlify)."
                ),
                namespace=METRIC_NAMESPACE,
                metric_name=UNHEALTHY_HOOKS_METRIC,
                dimensions=stack_dimension,
                statistic="Sum",
                threshold=1,
                period=period,
                evaluation_periods=2,
            ),
            self._alarm(
                "reconciler-errors",
                description=(
                    "The reconciler failed an invocation (crash or timeout): missed publishes "
                    "and disabled hooks go unnoticed. Check the reconciler's log group."
                ),
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": reconciler_function_name},
                statistic="Sum",
                threshold=1,
            ),
        ]

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
        period: int = PERIOD_SECONDS,
        evaluation_periods: int = 1,
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
            period=period,
            evaluation_periods=evaluation_periods,
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
