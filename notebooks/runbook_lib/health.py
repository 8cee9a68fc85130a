"""Section 2 (part), distribution health: does each distribution still match the site's design?

The design: Netlify serves the site (default behavior), an S3 origin serves ``/pdf/*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.aws import AwsClients, cloudfront_items, error_text
from runbook_lib.config import RunbookConfig


def _is_netlify_domain(domain: str) -> bool:
    domain = domain.lower()
    return "netlify" in domain  # *.netlify.app, *.netlify.com, *.netlifyglobalcdn.com


def _origin_kind(origin: Mapping[str, Any]) -> str:
    domain = str(origin.get("DomainName", "")).lower()
    if origin.get("S3OriginConfig") is not None or re.search(
        r"\.s3[.-]([a-z0-9-]+\.)?amazonaws\.com$|\.s3\.amazonaws\.com$", domain
    ):
        return "s3"
    if _is_netlify_domain(domain):
        return "netlify"
    if ".s3-website" in domain:
        return "s3-website"
    return "custom"


@dataclass
class DistributionHealth:
    distribution_id: str
    domain_name: str | None = None
    status: str | None = None
    enabled: bool | None = None
    aliases: tuple[str, ...] = ()
    origins: pd.DataFrame = field(default_factory=pd.DataFrame)
    behaviors: pd.DataFrame = field(default_factory=pd.DataFrame)
    flags: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return not self.flags and self.error is None

    def markdown(self) -> str:
        if self.error:
            return f"#### `{self.distribution_id}`: FAIL\n\n{self.error}"
        verdict = "PASS, matches the site's design" if self.healthy else "WARN, needs attention"
        lines = [
            f"#### `{self.distribution_id}`: {verdict}",
            f"- domain: `{self.domain_name}`; status: **{self.status}**; "
            f"enabled: **{self.enabled}**; aliases: {', '.join(self.aliases) or '(none)'}",
        ]
        lines += [f"- WARN: {flag}" for flag in self.flags]
        return "\n".join(lines)

    def tables(self) -> list[pd.DataFrame]:
        return [self.origins, self.behaviors]


def distribution_health(cloudfront, distribution_id: str) -> DistributionHealth:
    """Status, origins and behaviors of one distribution, with what breaks the site's design.

    The design: Netlify serves the site (default behavior), an S3 origin serves ``/pdf/*``.
    """
    health = DistributionHealth(distribution_id)
    try:
        dist = cloudfront.get_distribution(Id=distribution_id)["Distribution"]
    except Exception as error:
        health.error = f"cannot read the distribution: {error_text(error)}"
        return health
    cfg = dist.get("DistributionConfig", {})
    health.domain_name = dist.get("DomainName")
    health.status = dist.get("Status")
    health.enabled = bool(cfg.get("Enabled"))
    health.aliases = tuple(cloudfront_items(cfg.get("Aliases")))
    origins = {o.get("Id"): o for o in cloudfront_items(cfg.get("Origins"))}
    health.origins = pd.DataFrame(
        [
            {
                "origin id": oid,
                "domain": o.get("DomainName"),
                "kind": _origin_kind(o),
                "origin path": o.get("OriginPath") or "",
            }
            for oid, o in origins.items()
        ],
        columns=["origin id", "domain", "kind", "origin path"],
    )
    default = cfg.get("DefaultCacheBehavior") or {}
    behaviors = [("(default)", default)] + [
        (b.get("PathPattern"), b) for b in cloudfront_items(cfg.get("CacheBehaviors"))
    ]
    health.behaviors = pd.DataFrame(
        [
            {
                "path pattern": pattern,
                "target origin": b.get("TargetOriginId"),
                "origin kind": _origin_kind(origins.get(b.get("TargetOriginId"), {})),
                "viewer protocol": b.get("ViewerProtocolPolicy"),
                "cache policy": b.get("CachePolicyId") or "(legacy settings)",
            }
            for pattern, b in behaviors
        ],
        columns=["path pattern", "target origin", "origin kind", "viewer protocol", "cache policy"],
    )

    flags = health.flags
    if (health.status or "").lower() != "deployed":
        flags.append(
            f"status is {health.status!r}, not 'Deployed': a configuration change is still "
            "propagating (invalidations still work; wait and re-run)"
        )
    if not health.enabled:
        flags.append("the distribution is disabled: it serves nothing")
    default_origin = origins.get(default.get("TargetOriginId"))
    if default_origin is None:
        flags.append("the default behavior points at no known origin")
    elif _origin_kind(default_origin) != "netlify":
        flags.append(
            f"the default origin {default_origin.get('DomainName')!r} does not look like Netlify "
            "(*.netlify.app): the site is expected to be served from Netlify"
        )
    pdf = [b for pattern, b in behaviors if pattern in ("/pdf/*", "pdf/*")]
    if not pdf:
        flags.append("no cache behavior for '/pdf/*': PDFs would be fetched from Netlify")
    else:
        target = origins.get(pdf[0].get("TargetOriginId"))
        if target is None or _origin_kind(target) != "s3":
            where = target.get("DomainName") if target else pdf[0].get("TargetOriginId")
            flags.append(f"'/pdf/*' points at {where!r}, not an S3 origin")
    return health


def distributions_health(config: RunbookConfig, aws: AwsClients | None) -> list[DistributionHealth]:
    if not config.live or not config.distribution_ids:
        return []
    aws = aws or AwsClients(config)
    return [distribution_health(aws.cloudfront, did) for did in config.distribution_ids]
