"""The reconciler (optional per site): a scheduled Lambda that finds publishes no notification
ever invalidated, and Netlify hooks that are missing or switched off.

Only built when the site has a ``netlifyApiToken``. It shares the ingest's code archive,
runtime and architecture, and has its own role, policy and log group. It reads the token from
the site's secrets parameter, never from its environment.

Schedule: an EventBridge rule with a ``rate(N minutes)`` expression, not EventBridge
Scheduler. Both would do; the rule needs no IAM role of its own (EventBridge invokes the
function through a resource-policy statement scoped to the rule's ARN, ``source_arn``), so it
is two resources and one permission fewer to get wrong, and the moto-based local stack can hold
it. Scheduler's extras (time zones, one-off schedules, flexible windows) are of no use for a
fixed interval, and at most 8,640 runs a month (every 5 minutes) neither costs anything worth
counting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.alarms import METRIC_NAMESPACE
from infra.environments import reconciler_environment, with_secrets_version
from infra.function import (
    ARCHITECTURE,
    RUNTIME,
    distribution_arn,
    function_code,
    lambda_assume_role_policy,
    log_statement,
)
from infra.settings import SiteSettings

RECONCILER_HANDLER = "function.reconciler.handler"
# Each run makes a few bounded calls (Netlify's site and hooks, CloudFront's invalidations of
# each distribution, the queue's depth, one SQS send, one PutMetricData); a minute leaves room
# for slow answers.
RECONCILER_TIMEOUT_SECONDS = 60
RECONCILER_MEMORY_MB = 256
EVENTS_PRINCIPAL = "events.amazonaws.com"


def schedule_expression(minutes: int) -> str:
    """EventBridge's rate expression: ``rate(1 minute)``, ``rate(10 minutes)``."""
    return f"rate({minutes} minute{'' if minutes == 1 else 's'})"


def reconciler_policy(
    *,
    partition: str,
    account_id: str,
    distribution_ids: Sequence[str],
    log_group_arn: str,
    parameter_arn: str,
    queue_arn: str,
    dead_letter_queue_arn: str,
) -> dict:
    """The reconciler's policy: least privilege, one statement per purpose.

    - ``ssm:GetParameter`` on the site's parameter: the Netlify API token (aws/ssm key: no
      ``kms:Decrypt`` statement, as for the ingest).
    - ``cloudfront:ListInvalidations`` and ``cloudfront:GetInvalidation`` on the site's
      distributions: ListInvalidations returns only each invalidation's Id, CreateTime and
      Status, so matching the configured paths takes a GetInvalidation per candidate.
    - ``sqs:SendMessage`` on the site's queue: a missed publish is queued like the ingest does
      (it also authorizes ``SendMessageBatch``).
    - ``sqs:GetQueueAttributes`` on the same queue: the reconciler queues nothing while the queue
      still holds messages (visible, in flight or delayed) that may cover the publish, so that
      a later run does not queue twice; and on the dead-letter queue: while it holds messages,
      a repair would likely end there too, every run, until the operator fixed the cause.
    - ``cloudwatch:PutMetricData`` on ``*`` (the action has no resource type: the CloudWatch
      guide's namespace example uses ``"Resource": "*"``), limited by the ``cloudwatch:namespace``
      condition to the project's namespace.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            log_statement(log_group_arn),
            {
                "Sid": "ReadWebhookSecrets",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": [parameter_arn],
            },
            {
                "Sid": "ReadSiteInvalidations",
                "Effect": "Allow",
                "Action": ["cloudfront:ListInvalidations", "cloudfront:GetInvalidation"],
                "Resource": [distribution_arn(partition, account_id, d) for d in distribution_ids],
            },
            {
                "Sid": "QueueMissedInvalidations",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": [queue_arn],
            },
            {
                "Sid": "ReadQueueDepth",
                "Effect": "Allow",
                "Action": ["sqs:GetQueueAttributes"],
                "Resource": [queue_arn, dead_letter_queue_arn],
            },
            {
                "Sid": "PutReconcilerMetrics",
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData"],
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            },
        ],
    }


class Reconciler(pulumi.ComponentResource):
    """Log group, role, policy, the reconciler Lambda, its schedule and the schedule's
    permission to invoke it."""

    def __init__(
        self,
        name: str,
        *,
        settings: SiteSettings,
        stack: str,
        parameter_name: str,
        parameter_arn: pulumi.Input[str],
        parameter_version: pulumi.Input[int],
        queue_url: pulumi.Input[str],
        queue_arn: pulumi.Input[str],
        dead_letter_queue_url: pulumi.Input[str],
        dead_letter_queue_arn: pulumi.Input[str],
        webhook_endpoint: pulumi.Input[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:Reconciler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition(opts=invoke).partition
        account_id = aws.get_caller_identity(opts=invoke).account_id
        site = naming.site_label(stack, settings.domain)
        self.function_name = naming.reconciler_function_name(stack, settings.domain)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=naming.log_group_name(self.function_name),
            retention_in_days=settings.log_retention_days,
            tags=dict(tags),
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(lambda_assume_role_policy()),
            description=f"Netlify webhook reconciler for {site}",
            tags=dict(tags),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                self.log_group.arn, parameter_arn, queue_arn, dead_letter_queue_arn
            ).apply(
                lambda arns: json.dumps(
                    reconciler_policy(
                        partition=partition,
                        account_id=account_id,
                        distribution_ids=settings.distribution_ids,
                        log_group_arn=arns[0],
                        parameter_arn=arns[1],
                        queue_arn=arns[2],
                        dead_letter_queue_arn=arns[3],
                    )
                )
            ),
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=self.function_name,
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=RECONCILER_HANDLER,
            code=function_code(),  # one package, three handlers
            timeout=RECONCILER_TIMEOUT_SECONDS,
            memory_size=RECONCILER_MEMORY_MB,
            environment={
                "variables": pulumi.Output.all(
                    queue_url, webhook_endpoint, parameter_version, dead_letter_queue_url
                ).apply(
                    lambda values: with_secrets_version(
                        reconciler_environment(
                            settings,
                            stack=stack,
                            parameter_name=parameter_name,
                            queue_url=values[0],
                            webhook_endpoint=values[1],
                            dead_letter_queue_url=values[3],
                        ),
                        values[2],
                    )
                )
            },
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            description=f"Finds missed publishes and unhealthy Netlify hooks ({site})",
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.policy]),
        )
        # EventBridge invokes asynchronously, and Lambda retries a failed asynchronous call
        # twice by default: a retry could overlap the next scheduled run and queue twice. The
        # next run is the retry.
        self.invoke_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-no-retries",
            function_name=self.function.name,
            maximum_retry_attempts=0,
            opts=child,
        )
        self.schedule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            name=naming.reconciler_schedule_name(stack, settings.domain),
            description=f"Runs the Netlify webhook reconciler ({site})",
            schedule_expression=schedule_expression(settings.reconcile_minutes),
            state="ENABLED",
            tags=dict(tags),
            opts=child,
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal=EVENTS_PRINCIPAL,
            source_arn=self.schedule.arn,
            opts=child,
        )
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.schedule.name,
            arn=self.function.arn,
            # EventBridge needs the permission before its first invocation.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.permission]),
        )
        self.register_outputs(
            {
                "reconciler_function_name": self.function.name,
                "reconciler_log_group_name": self.log_group.name,
            }
        )
