"""Section 2, health of the whole path: Netlify -> ingest -> queue -> worker -> CloudFront.

Read-only checks, each a table row with its verdict:

- the account the credentials are in is the stack's account (from an output ARN), and the
  region is the stack's own;
- the ingest, the worker and (when the stack has one) the reconciler exist, are Active, run the
  runtime the program deploys (``infra.function.RUNTIME``), and the ingest runs with the secrets
  parameter's current version (``SECRETS_VERSION``: a rotation outside ``pulumi up`` leaves warm
  containers on the old secrets) and the stack's distributions;
- each distribution still has the site's shape (``runbook_lib.health``) and room for the next
  deploy's invalidation: CloudFront allows 15 wildcard paths and 3,000 file paths in progress
  per distribution, and refuses more with ``TooManyInvalidationsInProgress``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from function import webhook_settings
from infra.function import RUNTIME
from runbook_lib.aws import AwsClients, cloudfront_items, error_text, newest_invalidations
from runbook_lib.config import PARAMETER, PULUMI, STACK_FILE, RunbookConfig, source_kind
from runbook_lib.health import DistributionHealth, distribution_health
from runbook_lib.verdict import FAIL, PASS, SKIPPED, WARN, Outcome, worst

# CloudFront's limits per distribution (Developer Guide, "Concurrent invalidation request
# maximum"): paths with a `*` in progress, and file paths (without one) in progress.
WILDCARD_PATHS_IN_PROGRESS = 15
FILE_PATHS_IN_PROGRESS = 3000
# In-progress invalidations are the newest ones: this many of the newest are looked at.
IN_PROGRESS_SCAN = 100
CHECK_COLUMNS = ["check", "verdict", "detail"]
LIMIT_COLUMNS = [
    "distribution",
    "in progress",
    "wildcard paths (of 15)",
    "file paths (of 3,000)",
    "next deploy fits",
    "verdict",
]


@dataclass
class Check:
    check: str
    verdict: str
    detail: str


@dataclass
class InProgress:
    distribution_id: str
    invalidations: int = 0
    wildcard_paths: int = 0
    file_paths: int = 0
    fits_next: bool = True
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return WARN
        return PASS if self.fits_next else WARN

    def row(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution_id,
            "in progress": "" if self.error else self.invalidations,
            "wildcard paths (of 15)": "" if self.error else self.wildcard_paths,
            "file paths (of 3,000)": "" if self.error else self.file_paths,
            "next deploy fits": self.error or ("yes" if self.fits_next else "no"),
            "verdict": self.verdict,
        }


def is_wildcard(path: str) -> bool:
    return path.endswith("*")


def invalidations_in_progress(
    cloudfront, distribution_id: str, next_paths: tuple[str, ...], scan: int = IN_PROGRESS_SCAN
) -> InProgress:
    """What is in progress on ``distribution_id``, and whether ``next_paths`` would still fit."""
    found = InProgress(distribution_id)
    try:
        for summary in newest_invalidations(cloudfront, distribution_id, scan):
            if (summary.get("Status") or "").strip().lower() != "inprogress":
                continue
            item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=summary["Id"])
            paths = cloudfront_items(item["Invalidation"]["InvalidationBatch"].get("Paths"))
            found.invalidations += 1
            found.wildcard_paths += sum(1 for path in paths if is_wildcard(path))
            found.file_paths += sum(1 for path in paths if not is_wildcard(path))
    except Exception as error:
        found.error = f"cannot list invalidations: {error_text(error)}"
        return found
    wild = sum(1 for path in next_paths if is_wildcard(path))
    files = len(next_paths) - wild
    found.fits_next = (
        found.wildcard_paths + wild <= WILDCARD_PATHS_IN_PROGRESS
        and found.file_paths + files <= FILE_PATHS_IN_PROGRESS
    )
    return found


def _function_checks(
    aws: AwsClients, role: str, name: str | None, output: str, config: RunbookConfig
) -> list[Check]:
    """Exists, Active, the program's runtime; for the ingest also its secrets version and
    distributions."""
    what = f"{role} function"
    if not name:
        return [
            Check(what, WARN, f"name unknown: the stack output `{output}` (or its NCW_ variable)")
        ]
    try:
        found = aws.lambda_.get_function_configuration(FunctionName=name)
    except Exception as error:
        return [Check(what, FAIL, f"`{name}` cannot be read: {error_text(error)}.")]
    checks = []
    runtime, state = found.get("Runtime"), found.get("State") or "Active"
    update = found.get("LastUpdateStatus") or "Successful"
    if runtime != RUNTIME:
        checks.append(
            Check(
                what,
                FAIL,
                f"`{name}` runs {runtime or 'no managed runtime'}; the program deploys {RUNTIME}. "
                "Run `pulumi up` (or `pulumi refresh` to see the drift).",
            )
        )
    elif state == "Failed" or update == "Failed":
        reason = found.get("StateReason") or found.get("LastUpdateStatusReason") or ""
        checks.append(Check(what, FAIL, f"`{name}` is {state}/{update}: {reason}".rstrip(": ")))
    elif state != "Active" or update != "Successful":
        checks.append(Check(what, WARN, f"`{name}` is {state}, last update {update}: re-run soon."))
    else:
        checks.append(Check(what, PASS, f"`{name}` is Active and runs {runtime}."))
    if role == "ingest":
        variables = (found.get("Environment") or {}).get("Variables") or {}
        checks.append(_secrets_version_check(aws, config, variables))
        checks += _distribution_ids_check(config, variables)
    return checks


def _secrets_version_check(
    aws: AwsClients, config: RunbookConfig, variables: dict[str, str]
) -> Check:
    what = "ingest secrets version"
    running = variables.get(webhook_settings.ENV_SECRETS_VERSION)
    parameter = config.secrets_parameter or variables.get(webhook_settings.ENV_SECRETS_PARAMETER)
    if not parameter:
        return Check(what, WARN, "the secrets parameter's name is unknown")
    try:
        # Only the Version is read. WithDecryption=False: the value is never decrypted, and it
        # is dropped at once (moto returns it nearly in clear).
        current = aws.ssm.get_parameter(Name=parameter, WithDecryption=False)["Parameter"][
            "Version"
        ]
    except Exception as error:
        return Check(
            what, FAIL, f"the parameter `{parameter}` cannot be read: {error_text(error)}."
        )
    if running is None:
        return Check(
            what,
            WARN,
            f"the ingest has no {webhook_settings.ENV_SECRETS_VERSION}: deployed before it "
            f"existed; `pulumi up` adds it (parameter at version {current}).",
        )
    if str(running) != str(current):
        return Check(
            what,
            FAIL,
            f"the ingest runs with secrets version {running}, the parameter `{parameter}` is at "
            f"version {current}: warm containers may hold old secrets. Set the secrets with "
            "`pulumi config set --secret` and `pulumi up`, not in SSM directly.",
        )
    return Check(what, PASS, f"version {current}, as in the parameter `{parameter}`.")


def _distribution_ids_check(config: RunbookConfig, variables: dict[str, str]) -> list[Check]:
    configured = webhook_settings.split_list(
        variables.get(webhook_settings.ENV_DISTRIBUTION_IDS, "")
    )
    if source_kind(config.sources.get("distribution_ids", "")) == STACK_FILE or not configured:
        return []
    if set(configured) != set(config.distribution_ids):
        return [
            Check(
                "ingest distributions",
                FAIL,
                f"the ingest invalidates {', '.join(configured)}, the stack names "
                f"{', '.join(config.distribution_ids)}: `pulumi up`.",
            )
        ]
    return [Check("ingest distributions", PASS, ", ".join(configured))]


def _account_check(config: RunbookConfig, account: str | None) -> Check:
    if account is None:
        return Check("account", WARN, "the credentials' account is unknown (see section 1)")
    if config.stack_account is None:
        return Check(
            "account",
            WARN,
            f"credentials for {account}; the stack's account is unknown (no function_arn or "
            "alarm_topic_arn output)",
        )
    if config.stack_account != account:
        return Check(
            "account",
            FAIL,
            f"the credentials are for account {account}, the stack is in "
            f"{config.stack_account}: every read here is about another account. Switch "
            "profile (AWS_PROFILE) and re-run.",
        )
    return Check("account", PASS, f"{account}, the stack's account")


def _region_check(config: RunbookConfig) -> Check:
    source = config.sources.get("region", "")
    if source_kind(source) in (PARAMETER, PULUMI, STACK_FILE) or "NCW_REGION" in source:
        return Check("region", PASS, f"{config.region} ({source})")
    return Check(
        "region",
        WARN,
        f"{config.region} comes from {source}, not from the stack (its `region` output or "
        "NCW_REGION): check it is the stack's",
    )


@dataclass
class PathHealth:
    checks: list[Check] = field(default_factory=list)
    distributions: list[DistributionHealth] = field(default_factory=list)
    in_progress: list[InProgress] = field(default_factory=list)
    skipped: str | None = None

    @property
    def verdict(self) -> str:
        if self.skipped:
            return SKIPPED
        return worst(
            [check.verdict for check in self.checks]
            + [item.verdict for item in self.in_progress]
            + [FAIL if d.error else WARN if d.flags else PASS for d in self.distributions]
        )

    def reasons(self) -> list[str]:
        if self.skipped:
            return [self.skipped]
        verdict = self.verdict
        found = [f"{c.check}: {c.detail}" for c in self.checks if c.verdict == verdict]
        found += [
            f"{d.distribution_id}: {d.error or '; '.join(d.flags)}"
            for d in self.distributions
            if (FAIL if d.error else WARN if d.flags else PASS) == verdict and verdict != PASS
        ]
        found += [
            f"{item.distribution_id}: "
            + (item.error or "no room for the next deploy's invalidation in progress")
            for item in self.in_progress
            if item.verdict == verdict and verdict != PASS
        ]
        if verdict == PASS:
            return [f"{len(self.checks)} checks and {len(self.distributions)} distribution(s) fine"]
        return found

    def outcome(self) -> Outcome:
        return Outcome("health", self.verdict, self.reasons())

    def markdown(self) -> str:
        if self.skipped:
            return f"**SKIPPED:** {self.skipped}"
        return f"**{self.verdict}:** " + "; ".join(self.reasons())

    def tables(self) -> list[Any]:
        parts: list[Any] = [pd.DataFrame([vars(c) for c in self.checks], columns=CHECK_COLUMNS)]
        if self.in_progress:
            parts.append(
                "Invalidations in progress per distribution, against CloudFront's limits (the "
                "next deploy adds the stack's invalidation paths):"
            )
            parts.append(pd.DataFrame([i.row() for i in self.in_progress], columns=LIMIT_COLUMNS))
        for health in self.distributions:
            parts.append(health.markdown())
            parts += [frame for frame in health.tables() if not frame.empty]
        return parts


def path_health(
    config: RunbookConfig, aws: AwsClients | None, *, account: str | None = None
) -> PathHealth:
    """Section 2. ``account`` is the credentials' account (section 1 read it from STS)."""
    if not config.live:
        return PathHealth(skipped=config.why_not_live())
    aws = aws or AwsClients(config)
    result = PathHealth(checks=[_account_check(config, account), _region_check(config)])
    result.checks += _function_checks(aws, "ingest", config.function_name, "function_name", config)
    result.checks += _function_checks(
        aws, "worker", config.worker_function_name, "worker_function_name", config
    )
    if config.reconciler_function_name:
        result.checks += _function_checks(
            aws, "reconciler", config.reconciler_function_name, "reconciler_function_name", config
        )
    for distribution_id in config.distribution_ids:
        result.distributions.append(distribution_health(aws.cloudfront, distribution_id))
        result.in_progress.append(
            invalidations_in_progress(aws.cloudfront, distribution_id, config.invalidation_paths)
        )
    return result
