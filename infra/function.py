"""The ingest function: IAM role, secrets parameter, log group and the Lambda itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pulumi
import pulumi_aws as aws

import function
from function import webhook_settings
from infra import naming
from infra.environments import function_environment, with_secrets_version
from infra.settings import SiteSettings

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
# The archive holds the package folder itself, so the handler is named by its package path.
FUNCTION_DIR = Path(function.__file__).resolve().parent
HANDLER = "function.handler.handler"
TIMEOUT_SECONDS = 30
MEMORY_MB = 256


def lambda_assume_role_policy() -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def distribution_arn(partition: str, account_id: str, distribution_id: str) -> str:
    # CloudFront is global: its ARNs have no region. The partition comes from the provider
    # (aws.get_partition()), so the same program works in aws-cn and aws-us-gov.
    return f"arn:{partition}:cloudfront::{account_id}:distribution/{distribution_id}"


def log_statement(log_group_arn: str) -> dict:
    """Write to one's own log group; the provider's ARN has no ":*", streams are "<arn>:*"."""
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [log_group_arn, f"{log_group_arn}:*"],
    }


def function_policy(*, log_group_arn: str, parameter_arn: str, queue_arn: str) -> dict:
    """The ingest's policy: least privilege, one statement per purpose, no wildcard resources.

    No CloudFront: the ingest only queues; the worker invalidates. ``sqs:SendMessage`` also
    authorizes ``SendMessageBatch`` (SQS has no separate permission for the batch actions).

    No ``kms:Decrypt`` statement: the parameter is encrypted with the AWS managed key
    ``aws/ssm``, whose key policy already lets every principal of the account decrypt through
    Parameter Store (AWS Systems Manager guide, "Restricting decryption of SecureString
    parameter values"). A customer managed key would need the statement. The queue uses
    SQS-managed encryption (SSE-SQS), which needs no KMS permission either.
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
                "Sid": "QueueInvalidations",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": [queue_arn],
            },
        ],
    }


def function_code(folder: Path = FUNCTION_DIR) -> pulumi.AssetArchive:
    """Every file of ``function/`` under ``function/`` in the archive, without caches."""
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    return pulumi.AssetArchive(
        {path.relative_to(folder.parent).as_posix(): pulumi.FileAsset(str(path)) for path in files}
    )


class WebhookFunction(pulumi.ComponentResource):
    """The ingest: Lambda + role + inline policy + SecureString + log group for one site.

    It sends to the pipeline's queue, so it is built after the queue (``queue_url``,
    ``queue_arn``). The SecureString holds every secret of the site: the webhook token, the
    optional JWS secret and the optional Netlify API token (read by the reconciler only).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: SiteSettings,
        stack: str,
        webhook_token: pulumi.Input[str],
        netlify_jws_secret: pulumi.Input[str] | None,
        netlify_api_token: pulumi.Input[str] | None,
        queue_url: pulumi.Input[str],
        queue_arn: pulumi.Input[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.function_name = naming.function_name(stack, settings.domain)
        self.parameter_name = naming.secrets_parameter_name(stack, settings.domain)
        site = naming.site_label(stack, settings.domain)

        # The SecureString's JSON, written by the contract the functions read it with.
        secrets_value = pulumi.Output.secret(
            pulumi.Output.all(webhook_token, netlify_jws_secret, netlify_api_token).apply(
                lambda values: webhook_settings.secrets_value(values[0], values[1], values[2])
            )
        )
        self.parameter = aws.ssm.Parameter(
            f"{name}-secrets",
            name=self.parameter_name,
            type="SecureString",  # encrypted with the AWS managed key aws/ssm
            value=secrets_value,
            description=f"Netlify webhook secrets for {site}",
            tags=dict(tags),
            opts=child,
        )
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
            description=f"Netlify webhook function for {site}",
            tags=dict(tags),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.all(self.log_group.arn, self.parameter.arn, queue_arn).apply(
                lambda arns: json.dumps(
                    function_policy(log_group_arn=arns[0], parameter_arn=arns[1], queue_arn=arns[2])
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
            handler=HANDLER,
            code=function_code(),
            timeout=TIMEOUT_SECONDS,
            memory_size=MEMORY_MB,
            # The queue URL is known once the queue exists, so the variables are built in one
            # apply, by the same contract the handler reads them with.
            environment={
                "variables": pulumi.Output.all(queue_url, self.parameter.version).apply(
                    lambda values: with_secrets_version(
                        function_environment(settings, self.parameter_name, values[0]), values[1]
                    )
                )
            },
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            description=f"Netlify deploys -> invalidation queue ({site})",
            tags=dict(tags),
            # The log group first (else Lambda creates it without retention), and the policy
            # before the first invocation can need it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.policy]),
        )
        self.register_outputs(
            {
                "function_name": self.function.name,
                "function_arn": self.function.arn,
                "log_group_name": self.log_group.name,
                "secrets_parameter_name": self.parameter.name,
            }
        )
