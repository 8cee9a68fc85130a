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
