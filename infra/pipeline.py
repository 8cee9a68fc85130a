"""The durable pipeline: invalidation queue, dead-letter queue, worker function, alarms.

The numbers below are shared with the local stack (``local/``), which builds the same queues on
moto, and with the worker's backoff (``function.worker``): the retry span they give is tested.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.environments import worker_environment
from infra.function import (
    ARCHITECTURE,
    RUNTIME,
    distribution_arn,
    function_code,
    lambda_assume_role_policy,
    log_statement,
)
from infra.settings import SiteSettings

# The worker's Lambda timeout. A batch holds at most BATCH_SIZE records; each CreateInvalidation
# is bounded by the worker's deadline, so a batch finishes well inside this.
WORKER_TIMEOUT_SECONDS = 120
WORKER_MEMORY_MB = 256
# AWS: a queue's visibility timeout should be at least 6 x the function's timeout.
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 6 * WORKER_TIMEOUT_SECONDS
# Records per worker invocation (SQS event source mappings allow up to 10 without a window).
BATCH_SIZE = 10
# Receives before SQS moves a message to the dead-letter queue. With the worker's backoff
# (min(900, 30 * 2**(n - 1)) s, up to 20 % shorter by jitter) 12 receives span about 1.6-2 hours.
MAX_RECEIVE_COUNT = 12
# The queue keeps a message longer than any retry span; the dead-letter queue as long as SQS can.
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
# Alarms: the oldest queued message older than this means invalidations are stuck.
OLDEST_MESSAGE_ALARM_SECONDS = 900

WORKER_HANDLER = "function.worker.handler"
# The event source mapping reads this from the worker's answer: only the listed records come
# back, the others are deleted.
FUNCTION_RESPONSE_TYPES = ["ReportBatchItemFailures"]


def redrive_policy(dead_letter_queue_arn: str) -> dict:
    """The queue's redrive policy: after MAX_RECEIVE_COUNT receives, SQS moves the message."""
    return {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}


def redrive_allow_policy(source_queue_arn: str) -> dict:
    """Only the site's own queue may use its dead-letter queue."""
    return {"redrivePermission": "byQueue", "sourceQueueArns": [source_queue_arn]}


def worker_policy(
    *,
    partition: str,
    account_id: str,
    distribution_ids: Sequence[str],
    log_group_arn: str,
    queue_arn: str,
    dead_letter_queue_arn: str,
) -> dict:
    """The worker's policy: least privilege, one statement per purpose, every resource by ARN.

    ``ReceiveMessage``, ``DeleteMessage`` and ``GetQueueAttributes`` are what the event source
    mapping itself needs (Lambda checks them when the mapping is created);
    ``ChangeMessageVisibility`` is the worker's backoff, ``SendMessage`` on the dead-letter queue
    its way to set a permanent failure aside. SSE-SQS queues need no KMS permission.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            log_statement(log_group_arn),
            {
                "Sid": "InvalidateSiteDistributions",
                "Effect": "Allow",
                "Action": ["cloudfront:CreateInvalidation"],
                "Resource": [distribution_arn(partition, account_id, d) for d in distribution_ids],
            },
            {
                "Sid": "ConsumeInvalidationQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                "Resource": [queue_arn],
            },
            {
                "Sid": "SetAsidePermanentFailures",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": [dead_letter_queue_arn],
            },
        ],
    }


class Pipeline(pulumi.ComponentResource):
    """The invalidation queue, its dead-letter queue, and the worker consuming the queue.

    Built before the ingest, which sends to ``queue``; the alarms watching all of it are a
    separate component (``infra.alarms``), built once the ingest's log group exists.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: SiteSettings,
        stack: str,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:Pipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition(opts=invoke).partition
        account_id = aws.get_caller_identity(opts=invoke).account_id
        self.worker_function_name = naming.worker_function_name(stack, settings.domain)
        site = naming.site_label(stack, settings.domain)

        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dead-letters",
            name=naming.dead_letter_queue_name(stack, settings.domain),
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            tags=dict(tags),
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=naming.queue_name(stack, settings.domain),
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=QUEUE_VISIBILITY_TIMEOUT_SECONDS,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps(redrive_policy(arn))
            ),
            tags=dict(tags),
            opts=child,
        )
        # A resource of its own: on the dead-letter queue itself it would need the source
        # queue's ARN, and the source queue already needs the dead-letter queue's.
        self.redrive_allow_policy = aws.sqs.RedriveAllowPolicy(
            f"{name}-dead-letters-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps(redrive_allow_policy(arn))
            ),
            opts=child,
        )

        self.worker_log_group = aws.cloudwatch.LogGroup(
            f"{name}-worker-logs",
            name=naming.log_group_name(self.worker_function_name),
            retention_in_days=settings.log_retention_days,
            tags=dict(tags),
            opts=child,
        )
        self.worker_role = aws.iam.Role(
            f"{name}-worker-role",
            assume_role_policy=json.dumps(lambda_assume_role_policy()),
            description=f"Netlify webhook invalidation worker for {site}",
            tags=dict(tags),
            opts=child,
        )
        self.worker_policy = aws.iam.RolePolicy(
            f"{name}-worker-policy",
            role=self.worker_role.id,
            policy=pulumi.Output.all(
                self.worker_log_group.arn, self.queue.arn, self.dead_letter_queue.arn
            ).apply(
                lambda arns: json.dumps(
                    worker_policy(
                        partition=partition,
                        account_id=account_id,
                        distribution_ids=settings.distribution_ids,
                        log_group_arn=arns[0],
                        queue_arn=arns[1],
                        dead_letter_queue_arn=arns[2],
                    )
                )
            ),
            opts=child,
        )
        self.worker = aws.lambda_.Function(
            f"{name}-worker",
            name=self.worker_function_name,
            role=self.worker_role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=WORKER_HANDLER,
            code=function_code(),  # one package, two handlers
            timeout=WORKER_TIMEOUT_SECONDS,
            memory_size=WORKER_MEMORY_MB,
            environment={
                "variables": self.dead_letter_queue.url.apply(
                    lambda url: worker_environment(settings, url)
                )
            },
            logging_config={"log_format": "JSON", "log_group": self.worker_log_group.name},
            description=f"Invalidation queue -> CloudFront invalidations ({site})",
            tags=dict(tags),
            # The log group first (else Lambda creates it without retention), the policy before
            # the first invocation can need it.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.worker_log_group, self.worker_policy]
            ),
        )
        self.event_source_mapping = aws.lambda_.EventSourceMapping(
            f"{name}-worker-trigger",
            event_source_arn=self.queue.arn,
            function_name=self.worker.arn,
            batch_size=BATCH_SIZE,
            function_response_types=FUNCTION_RESPONSE_TYPES,
            enabled=True,
            tags=dict(tags),
            # Lambda checks the role's SQS permissions when the mapping is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.worker_policy]),
        )
        self.register_outputs(
            {
                "queue_url": self.queue.url,
                "dead_letter_queue_url": self.dead_letter_queue.url,
                "worker_function_name": self.worker.name,
                "worker_log_group_name": self.worker_log_group.name,
            }
        )
