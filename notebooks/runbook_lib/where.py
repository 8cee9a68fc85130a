"""Section 1, where am I? The account, region, stack, webhook and distributions in use."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_url


@dataclass
class WhereAmI:
    stack: str
    region: str
    endpoint: str
    account: str | None
    caller_arn: str | None
    webhook_url: str  # masked
    webhook_host: str | None
    distribution_ids: tuple[str, ...]
    distribution_id: str | None
    invalidation_paths: tuple[str, ...]
    config_source: str
    pulumi_note: str
    sources: dict[str, str]
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None
    # The pipeline (section 3): what, value and source, in table order.
    pipeline: tuple[tuple[str, str, str], ...] = ()

    def table(self) -> pd.DataFrame:
        rows = [
            ("account", self.account or "-", "sts get-caller-identity"),
            ("caller", self.caller_arn or "-", "sts get-caller-identity"),
            ("region", self.region, self.sources.get("region", "")),
            ("AWS endpoint", self.endpoint, self.sources.get("aws_endpoint_url", "")),
            ("stack", self.stack, "parameter / NCW_STACK"),
            ("webhook URL", self.webhook_url or "-", self.sources.get("webhook_url", "")),
            ("webhook Host header", self.webhook_host or "(from URL)", ""),
            (
                "distributions",
                ", ".join(self.distribution_ids) or "-",
                self.sources.get("distribution_ids", ""),
            ),
            ("distribution in focus", self.distribution_id or "-", ""),
            (
                "invalidation paths",
                ", ".join(self.invalidation_paths),
                self.sources.get("invalidation_paths", ""),
            ),
            *self.pipeline,
        ]
        return pd.DataFrame(rows, columns=["what", "value", "source"])

    def markdown(self) -> str:
        lines = [f"Settings read from: **{self.config_source}** ({self.pulumi_note})."]
        if self.skipped:
            lines.append(f"\n**Nothing to inspect yet.** {self.skipped}")
        lines += [f"- ⚠️ {problem}" for problem in self.problems]
        return "\n".join(lines)


def where_am_i(config: RunbookConfig, aws: AwsClients | None = None) -> WhereAmI:
    result = WhereAmI(
        stack=config.stack,
        region=config.region,
        endpoint=config.aws_endpoint_url or "real AWS",
        account=None,
        caller_arn=None,
        webhook_url=mask_url(config.webhook_url),
        webhook_host=config.webhook_host,
        distribution_ids=config.distribution_ids,
        distribution_id=config.distribution_id,
        invalidation_paths=config.invalidation_paths,
        config_source=config.source_summary(),
        pulumi_note=config.pulumi_note,
        sources=dict(config.sources),
        pipeline=tuple(
            (what, value or "-", config.sources.get(name, "") if value else "")
            for what, name, value in (
                ("queue", "queue_url", config.queue_url),
                ("dead-letter queue", "dead_letter_queue_url", config.dead_letter_queue_url),
                ("worker function", "worker_function_name", config.worker_function_name),
                ("alarm topic", "alarm_topic_arn", config.alarm_topic_arn),
            )
        ),
    )
    if not config.live:
        result.skipped = " ".join(config.missing())
        return result
    result.problems += [gap for gap in config.missing()]
    aws = aws or AwsClients(config)
    try:
        identity = aws.sts.get_caller_identity()
        result.account = identity.get("Account")
        result.caller_arn = identity.get("Arn")
    except Exception as error:  # no credentials, wrong endpoint: say so, keep going
        result.problems.append(f"cannot identify the AWS account: {error_text(error)}")
    return result
