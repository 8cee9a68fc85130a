"""Section 1, where am I? The account, region, stack, webhook and distributions in use."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from runbook_lib.aws import AwsClients, error_text
from runbook_lib.config import RunbookConfig
from runbook_lib.masking import mask_url
from runbook_lib.verdict import PASS, SKIPPED, WARN, Outcome


@dataclass
class WhereAmI:
    stack: str
    region: str
    endpoint: str
    account: str | None
    caller_arn: str | None
    config_source: str
    pulumi_note: str
    # what, value, source: in table order, secrets masked
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None

    def table(self) -> pd.DataFrame:
        identity = [
            ("account", self.account or "-", "sts get-caller-identity" if self.account else ""),
            (
                "caller",
                self.caller_arn or "-",
                "sts get-caller-identity" if self.caller_arn else "",
            ),
        ]
        return pd.DataFrame(identity + self.rows, columns=["what", "value", "source"])

    def value(self, what: str) -> str:
        """The table's value of row ``what`` (secrets masked)."""
        return next((value for name, value, _source in self.rows if name == what), "")

    def markdown(self) -> str:
        lines = [f"Settings read from: **{self.config_source}** ({self.pulumi_note})."]
        if self.skipped:
            lines.append(f"\n**Nothing to inspect yet.** {self.skipped}")
        lines += [f"- WARN: {problem}" for problem in self.problems]
        return "\n".join(lines)

    def outcome(self) -> Outcome:
        if self.skipped:
            return Outcome("where am I", SKIPPED, [self.skipped])
        if self.problems:
            return Outcome("where am I", WARN, list(self.problems))
        return Outcome("where am I", PASS, [f"account {self.account}, region {self.region}"])


def _rows(config: RunbookConfig) -> list[tuple[str, str, str]]:
    def source(name: str, value: object) -> str:
        return config.sources.get(name, "") if value else ""

    shown: list[tuple[str, str, object]] = [
        ("region", "region", config.region),
        ("AWS endpoint", "aws_endpoint_url", config.aws_endpoint_url),
        ("stack", "stack", config.stack),
        ("endpoint mode", "endpoint", config.endpoint),
        ("webhook URL", "webhook_url", mask_url(config.webhook_url)),
        ("webhook Host header", "webhook_host", config.webhook_host),
        ("distributions", "distribution_ids", ", ".join(config.distribution_ids)),
        ("distributions acted on", "distribution_id", ", ".join(config.targets)),
        ("invalidation paths", "invalidation_paths", ", ".join(config.invalidation_paths)),
        ("stack's account", "stack_account", config.stack_account),
        ("ingest function", "function_name", config.function_name),
        ("secrets parameter", "secrets_parameter", config.secrets_parameter),
        ("queue", "queue_url", config.queue_url),
        ("dead-letter queue", "dead_letter_queue_url", config.dead_letter_queue_url),
        ("worker function", "worker_function_name", config.worker_function_name),
        ("alarm topic", "alarm_topic_arn", config.alarm_topic_arn),
        ("reconciler function", "reconciler_function_name", config.reconciler_function_name),
    ]
    rows = []
    for what, name, value in shown:
        text = str(value) if value else "-"
        where = source(name, value)
        if name == "aws_endpoint_url" and not value:
            text = "real AWS"
        if name == "distribution_id":
            where = "parameter `distribution_id`" if config.distribution_id else "all of them"
        rows.append((what, text, where))
    return rows


def where_am_i(config: RunbookConfig, aws: AwsClients | None = None) -> WhereAmI:
    result = WhereAmI(
        stack=config.stack,
        region=config.region,
        endpoint=config.aws_endpoint_url or "real AWS",
        account=None,
        caller_arn=None,
        config_source=config.source_summary(),
        pulumi_note=config.pulumi_note,
        rows=_rows(config),
    )
    if not config.live:
        result.skipped = " ".join(config.missing())
        return result
    result.problems += config.missing()
    aws = aws or AwsClients(config)
    try:
        identity = aws.sts.get_caller_identity()
        result.account = identity.get("Account")
        result.caller_arn = identity.get("Arn")
    except Exception as error:  # no credentials, wrong endpoint: say so, keep going
        result.problems.append(f"Cannot identify the AWS account: {error_text(error)}.")
    return result
