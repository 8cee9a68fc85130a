"""Fixtures for the runbook's tests: moto CloudFront distributions shaped like the site's."""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto import mock_aws
from moto.cloudfront.models import cloudfront_backends
from moto.core import DEFAULT_ACCOUNT_ID

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


@pytest.fixture
def moto_aws():
    with mock_aws():
        yield


@pytest.fixture
def cloudfront(moto_aws):
    return boto3.client("cloudfront", region_name="us-east-1")


@pytest.fixture
def logs(moto_aws):
    return boto3.client("logs", region_name="us-east-1")


def distribution_config(
    *,
    default_domain: str = "example-site.netlify.app",
    pdf_domain: str | None = "example-pdfs.s3.us-east-1.amazonaws.com",
    pdf_target: str = "pdfs",
    enabled: bool = True,
    aliases: tuple[str, ...] = ("www.example.com",),
) -> dict:
    origins = [
        {
            "Id": "netlify",
            "DomainName": default_domain,
            "CustomOriginConfig": {
                "HTTPPort": 80,
                "HTTPSPort": 443,
                "OriginProtocolPolicy": "https-only",
            },
        }
    ]
    behaviors = []
    if pdf_domain:
        origins.append(
            {
                "Id": "pdfs",
                "DomainName": pdf_domain,
                "S3OriginConfig": {"OriginAccessIdentity": ""},
            }
        )
        behaviors.append(
            {
                "PathPattern": "/pdf/*",
                "TargetOriginId": pdf_target,
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": CACHING_OPTIMIZED,
            }
        )
    config = {
        "CallerReference": str(uuid.uuid4()),
        "Comment": "runbook test",
        "Enabled": enabled,
        "Aliases": {"Quantity": len(aliases), "Items": list(aliases)},
        "Origins": {"Quantity": len(origins), "Items": origins},
        "DefaultCacheBehavior": {
            "TargetOriginId": "netlify",
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": CACHING_OPTIMIZED,
        },
    }
    if behaviors:
        config["CacheBehaviors"] = {"Quantity": len(behaviors), "Items": behaviors}
    return config


@pytest.fixture
def make_distribution(cloudfront):
    def make(**kwargs) -> str:
        answer = cloudfront.create_distribution(DistributionConfig=distribution_config(**kwargs))
        return answer["Distribution"]["Id"]

    return make


def _invalidate(cloudfront, distribution_id: str, paths: list[str], reference: str) -> str:
    answer = cloudfront.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": reference,
        },
    )
    return answer["Invalidation"]["Id"]


def _set_invalidation_status(distribution_id: str, invalidation_id: str, status: str) -> None:
    """moto completes invalidations at once; tests of the wait loop set the status themselves."""
    backend = cloudfront_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for invalidation in backend.invalidations[distribution_id]:
        if invalidation.id == invalidation_id:
            invalidation.status = status
            return
    raise KeyError(invalidation_id)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


@pytest.fixture
def invalidate(cloudfront):
    def make(distribution_id: str, paths: list[str], reference: str) -> str:
        return _invalidate(cloudfront, distribution_id, paths, reference)

    return make


@pytest.fixture
def set_status(moto_aws):
    return _set_invalidation_status


@pytest.fixture
def fake_clock():
    return FakeClock()


# ---------------------------------------------------------------------------- a site in moto

RUNTIME = "python3.13"  # what infra.function.RUNTIME says; the tests check the runbook reads it


def _zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("function/handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def seed_site(
    stack: str,
    distribution_ids: list[str],
    *,
    region: str = "us-east-1",
    reconciler: bool = False,
    endpoint: str = "alb",
) -> dict[str, str]:
    """One site stack's resources in moto (inside ``mock_aws``), as the program deploys them:
    its functions (the program's runtime, the ingest's SECRETS_VERSION), secrets parameter,
    queues, log groups and alarm topic. Returns the NCW_* environment that describes it."""
    from infra.function import RUNTIME as PROGRAM_RUNTIME

    assert PROGRAM_RUNTIME == RUNTIME
    iam = boto3.client("iam", region_name=region)
    try:
        role = iam.get_role(RoleName="ncw-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="ncw-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ssm = boto3.client("ssm", region_name=region)
    parameter = f"/netlify-cloudfront-webhook/{stack}/secrets"
    ssm.put_parameter(Name=parameter, Type="SecureString", Value='{"token": "t' + "0" * 20 + '"}')
    version = ssm.get_parameter(Name=parameter)["Parameter"]["Version"]
    sqs = boto3.client("sqs", region_name=region)
    dead = sqs.create_queue(QueueName=f"ncw-{stack}-dead-letters")["QueueUrl"]
    queue = sqs.create_queue(QueueName=f"ncw-{stack}-invalidations")["QueueUrl"]
    topic = boto3.client("sns", region_name=region).create_topic(Name=f"ncw-{stack}-alarms")[
        "TopicArn"
    ]
    lambda_ = boto3.client("lambda", region_name=region)
    logs = boto3.client("logs", region_name=region)
    names = {"ingest": f"ncw-{stack}", "worker": f"ncw-{stack}-worker"}
    if reconciler:
        names["reconciler"] = f"ncw-{stack}-reconciler"
    for role_name, name in names.items():
        variables = {"DISTRIBUTION_IDS": ",".join(distribution_ids)}
        if role_name == "ingest":
            variables |= {"SECRETS_PARAMETER": parameter, "SECRETS_VERSION": str(version)}
        if role_name == "reconciler":
            variables |= {"STACK_NAME": stack}
        lambda_.create_function(
            FunctionName=name,
            Runtime=RUNTIME,
            Role=role,
            Handler="function.handler.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": variables},
        )
        logs.create_log_group(logGroupName=f"/aws/lambda/{name}")
    env = {
        "NCW_STACK": stack,
        "NCW_REGION": region,
        "NCW_ENDPOINT": endpoint,
        "NCW_WEBHOOK_URL": f"https://{stack}.example.com/webhooks/netlify?token=t{'0' * 20}",
        "NCW_DISTRIBUTION_IDS": ",".join(distribution_ids),
        "NCW_FUNCTION_NAME": names["ingest"],
        "NCW_SECRETS_PARAMETER": parameter,
        "NCW_QUEUE_URL": queue,
        "NCW_DEAD_LETTER_QUEUE_URL": dead,
        "NCW_WORKER_FUNCTION_NAME": names["worker"],
        "NCW_ALARM_TOPIC_ARN": topic,
    }
    if reconciler:
        env["NCW_RECONCILER_FUNCTION_NAME"] = names["reconciler"]
    return env
