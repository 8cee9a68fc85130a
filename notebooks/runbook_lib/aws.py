"""AWS access for the runbook: clients, error text safe to show, CloudFront listings.

Clients are made on first use with short timeouts (no hanging); the listings serve the
health, verification and history sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_text


class AwsClients:
    """boto3 clients for the runbook, made on first use, with short timeouts (no hanging)."""

    def __init__(self, config: RunbookConfig) -> None:
        self.config = config

    @cached_property
    def _session(self):
        import boto3.session

        return boto3.session.Session(region_name=self.config.region)

    def client(self, service: str):
        from botocore.config import Config

        return self._session.client(
            service,
            endpoint_url=self.config.aws_endpoint_url or None,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 4, "mode": "standard"},
            ),
        )

    @cached_property
    def cloudfront(self):
        return self.client("cloudfront")

    @cached_property
    def sts(self):
        return self.client("sts")

    @cached_property
    def logs(self):
        return self.client("logs")

    @cached_property
    def sqs(self):
        return self.client("sqs")

    @cached_property
    def cloudwatch(self):
        return self.client("cloudwatch")

    @cached_property
    def lambda_(self):
        return self.client("lambda")

    @cached_property
    def ssm(self):
        return self.client("ssm")


def error_text(error: BaseException) -> str:
    """An AWS error as ``Code: message``, masked: what a section shows instead of a traceback."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if error else None
    text = f"{code}: {error}" if code else f"{type(error).__name__}: {error}"
    return mask_text(text)


def cloudfront_items(block: Mapping[str, Any] | None) -> list[Any]:
    """The ``Items`` of a CloudFront ``{"Quantity": n, "Items": [...]}`` block (absent: [])."""
    return list((block or {}).get("Items") or [])


def invalidation_pages(cloudfront, distribution_id: str, page_size: int = 100):
    """``ListInvalidations`` page by page: lists of summaries (``Id``, ``CreateTime``,
    ``Status``), newest first as the API returns them."""
    marker = ""
    while True:
        kwargs = {"DistributionId": distribution_id, "MaxItems": str(page_size)}
        if marker:
            kwargs["Marker"] = marker
        page = cloudfront.list_invalidations(**kwargs)["InvalidationList"]
        yield page.get("Items") or []
        marker = page.get("NextMarker") or ""
        if not page.get("IsTruncated") or not marker:
            return


def newest_invalidations(cloudfront, distribution_id: str, limit: int) -> list[dict[str, Any]]:
    """Newest first, at most ``limit`` invalidation summaries."""
    found: list[dict[str, Any]] = []
    for items in invalidation_pages(cloudfront, distribution_id, min(100, limit)):
        found += items
        if len(found) >= limit:
            break
    epoch = datetime.min.replace(tzinfo=UTC)
    found.sort(key=lambda item: item.get("CreateTime") or epoch, reverse=True)
    return found[:limit]
