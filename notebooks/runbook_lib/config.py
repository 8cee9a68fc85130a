"""Where the runbook's settings come from, and which source each one came from.

First match wins (``RunbookConfig.sources`` records it): notebook parameter -> ``pulumi stack
output`` (when the CLI is on PATH and ``NCW_NO_PULUMI`` is not set) -> environment (``NCW_*``,
``AWS_*``) -> the committed ``Pulumi.<stack>.yaml`` (non-secret values only).

The ``webhook_url`` parameter is best given without its token (papermill writes parameters into
the executed notebook): the token is then taken from the stack output or ``NCW_WEBHOOK_URL``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from function import webhook_settings
from infra.netlify_hook import JWS_SECRET_DATA_KEY
from infra.runbook_env import RUNBOOK_ENV
from infra.stack_files import PROJECT_DIR as REPO_ROOT

DEFAULT_REGION = "us-east-1"
# Set (to anything but "" or "0") to never run the pulumi CLI: tests and CI, where a logged-in
# CLI would turn a run with defaults into one against the real stack.
NO_PULUMI = "NCW_NO_PULUMI"

ENV = RUNBOOK_ENV  # the names the local stack exports, in infra/runbook_env.py
# Where a value came from; the first three mean "the operator pointed the runbook at a stack".
PARAMETER, PULUMI, ENVIRONMENT, STACK_FILE, DEFAULT = (
    "parameter",
    "pulumi stack output",
    "environment",
    "stack file",
    "default",
)
LIVE_SOURCES = (PARAMETER, PULUMI, ENVIRONMENT)
# The pipeline's settings: RunbookConfig field -> stack output (the environment variable is
# RUNBOOK_ENV[field]). A stack deployed before the pipeline existed has none of them.
PIPELINE_OUTPUTS = {
    "queue_url": "queue_url",
    "dead_letter_queue_url": "dead_letter_queue_url",
    "worker_function_name": "worker_function_name",
    "worker_log_group": "worker_log_group_name",
    "alarm_topic_arn": "alarm_topic_arn",
}


@dataclass(frozen=True)
class StackOutputs:
    outputs: dict[str, Any] | None
    note: str


def read_stack_outputs(
    stack: str,
    *,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    cwd: Path = REPO_ROOT,
    environ: Mapping[str, str] | None = None,
) -> StackOutputs:
    """``pulumi stack output --json --show-secrets`` when the CLI is present and not opted out
    of (``NCW_NO_PULUMI``), else None + why."""
    env = os.environ if environ is None else environ
    if env.get(NO_PULUMI, "") not in ("", "0"):
        return StackOutputs(None, f"stack outputs not read: {NO_PULUMI} is set")
    pulumi = which("pulumi")
    if not pulumi:
        return StackOutputs(None, "pulumi CLI not on PATH")
    try:
        done = run(
            [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return StackOutputs(None, f"pulumi stack output failed: {error}")
    if done.returncode != 0:
        # stderr names the problem (no such stack, not logged in); it holds no secret values.
        last = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        return StackOutputs(None, f"pulumi stack output failed: {last[0]}")
    try:
        outputs = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        return StackOutputs(None, "pulumi stack output did not print JSON")
    return StackOutputs(outputs, f"pulumi stack output --stack {stack}")


def read_stack_file(stack: str, project_dir: Path = REPO_ROOT) -> dict[str, Any]:
    """Non-secret values of ``Pulumi.<stack>.yaml`` (with the schema's defaults), or {}."""
    if not (project_dir / f"Pulumi.{stack}.yaml").is_file():
        return {}
    try:
        from infra.stack_files import load_stack_files

        files = load_stack_files(stack, project_dir)
    except Exception:  # a broken stack file must not stop the runbook; the program reports it
        return {}
    values: dict[str, Any] = {}
    for key, text in files.values.items():
        try:
            values[key] = json.loads(text) if text[:1] in "[{" else text
        except (json.JSONDecodeError, TypeError):
            values[key] = text
    values.update(files.provider)
    return values


@dataclass
class RunbookConfig:
    stack: str
    region: str
    aws_endpoint_url: str | None = None
    webhook_url: str | None = field(default=None, repr=False)
    webhook_host: str | None = None
    jws_secret: str | None = field(default=None, repr=False)
    distribution_ids: tuple[str, ...] = ()
    distribution_id: str | None = None
    invalidation_paths: tuple[str, ...] = webhook_settings.DEFAULT_INVALIDATION_PATHS
    function_name: str | None = None
    log_group: str | None = None
    netlify_site_id: str | None = None
    secrets_parameter: str | None = None
    netlify_hook: dict[str, Any] | None = field(default=None, repr=False)
    # The durable pipeline (section 3): queue -> worker -> CloudFront, and its alarms.
    queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    worker_function_name: str | None = None
    worker_log_group: str | None = None
    alarm_topic_arn: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    pulumi_note: str = ""

    @property
    def live(self) -> bool:
        """True when the operator pointed the runbook at a stack (local or real).

        The committed stack file alone does not count: it names example distributions, and a
        notebook run with its defaults (CI, nbmake) must not reach out to a real account.
        """
        if self.aws_endpoint_url:
            return True
        return any(
            self.sources.get(name) in LIVE_SOURCES for name in ("distribution_ids", "webhook_url")
        )

    def missing(self) -> list[str]:
        """What the operator still has to provide, in words."""
        gaps = []
        if not self.live:
            gaps.append(
                "no stack to talk to: install the pulumi CLI and log in, or set "
                "NCW_DISTRIBUTION_IDS / NCW_WEBHOOK_URL (and AWS_ENDPOINT_URL for the local "
                "stack: `make local` prints them), or pass the notebook parameters"
            )
        if not self.webhook_url:
            gaps.append("no webhook URL: pass `webhook_url`, set NCW_WEBHOOK_URL or deploy")
        if not self.distribution_ids:
            gaps.append("no distributions: set NCW_DISTRIBUTION_IDS or pass `distribution_id`")
        return gaps

    def pipeline_missing(self, *names: str) -> list[str]:
        """Which of the pipeline's values ``names`` (all when none given) are unknown, each
        with where it comes from; empty when all are known."""
        wanted = names or tuple(PIPELINE_OUTPUTS)
        return [
            f"`{name}` (stack output `{PIPELINE_OUTPUTS[name]}` or {ENV[name]})"
            for name in wanted
            if not getattr(self, name)
        ]

    def source_summary(self) -> str:
        used = sorted({source for source in self.sources.values() if source != DEFAULT})
        return ", ".join(used) or "defaults only"


_TOKEN_VALUE = re.compile(r"(?:^|&)token=([^&]+)", re.IGNORECASE)


def with_token_of(url: str | None, source: str | None) -> str | None:
    """``url`` with the ``token`` query value of ``source`` when ``url`` has none (copied as
    written, still URL-encoded); else ``url`` unchanged."""
    if not url or _TOKEN_VALUE.search(urllib.parse.urlsplit(url).query):
        return url
    found = _TOKEN_VALUE.search(urllib.parse.urlsplit(source or "").query)
    if not found:
        return url
    base, hash_sign, fragment = url.partition("#")
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{separator}token={found.group(1)}{hash_sign}{fragment}"


def _first(*candidates: tuple[str, Any]) -> tuple[Any, str]:
    for source, value in candidates:
        if value not in (None, "", [], (), {}):
            return value, source
    return None, DEFAULT


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return webhook_settings.split_list(value)
    return [str(item) for item in value if str(item).strip()]


def load_config(
    stack: str | None = "dev",
    region: str | None = None,
    aws_endpoint_url: str | None = None,
    webhook_url: str | None = None,
    distribution_id: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stack_outputs: StackOutputs | None = None,
    project_dir: Path = REPO_ROOT,
) -> RunbookConfig:
    """Resolve every setting the runbook needs and remember where each one came from."""
    env = os.environ if environ is None else environ
    stack = stack or env.get(ENV["stack"]) or "dev"
    if stack_outputs is None and (aws_endpoint_url or env.get("AWS_ENDPOINT_URL")):
        # Outputs describe the stack deployed in real AWS; with a local endpoint (the local
        # stack, `make demo`) they would send the test notification to the real webhook.
        stack_outputs = StackOutputs(None, "stack outputs not read: AWS_ENDPOINT_URL is set")
    if stack_outputs is None:
        stack_outputs = read_stack_outputs(stack, environ=env)
    out = stack_outputs.outputs or {}
    filed = read_stack_file(stack, project_dir)
    hook = out.get("netlify_hook") if isinstance(out.get("netlify_hook"), dict) else None
    sources: dict[str, str] = {}

    def pick(name: str, *candidates: tuple[str, Any]) -> Any:
        value, source = _first(*candidates)
        sources[name] = source
        return value

    region_value = pick(
        "region",
        (PARAMETER, region),
        (PULUMI, out.get("region")),
        # The stack's own region first: AWS_REGION is the shell's default for any account.
        (
            ENVIRONMENT,
            env.get(ENV["region"]) or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        ),
        (STACK_FILE, filed.get("aws:region")),
    )
    endpoint = pick(
        "aws_endpoint_url",
        (PARAMETER, aws_endpoint_url),
        (ENVIRONMENT, env.get("AWS_ENDPOINT_URL")),
    )
    url = pick(
        "webhook_url",
        (PARAMETER, webhook_url),
        (PULUMI, out.get("webhook_url")),
        (ENVIRONMENT, env.get(ENV["webhook_url"])),
    )
    if sources["webhook_url"] == PARAMETER:
        # A token-less parameter keeps the token out of the executed notebook (papermill writes
        # parameters into it): the token comes from the stack output or NCW_WEBHOOK_URL.
        for source, tokened in (
            (PULUMI, out.get("webhook_url")),
            (ENVIRONMENT, env.get(ENV["webhook_url"])),
        ):
            joined = with_token_of(url, tokened)
            if joined != url:
                url, sources["webhook_token"] = joined, source
                break
    ids = pick(
        "distribution_ids",
        (PULUMI, _as_list(out.get("distribution_ids"))),
        (ENVIRONMENT, _as_list(env.get(ENV["distribution_ids"]))),
        (STACK_FILE, _as_list(filed.get("distributionIds"))),
    )
    ids = list(dict.fromkeys(ids or []))
    if distribution_id:
        sources["distribution_id"] = PARAMETER
        if distribution_id not in ids:
            ids.insert(0, distribution_id)
            if sources["distribution_ids"] not in LIVE_SOURCES:
                sources["distribution_ids"] = PARAMETER
    chosen = distribution_id or (ids[0] if ids else None)
    paths = pick(
        "invalidation_paths",
        (PULUMI, _as_list(out.get("invalidation_paths"))),
        (ENVIRONMENT, _as_list(env.get(ENV["invalidation_paths"]))),
        (STACK_FILE, _as_list(filed.get("invalidationPaths"))),
    )
    hook_secret = ((hook or {}).get("data") or {}).get(JWS_SECRET_DATA_KEY)
    jws = pick("jws_secret", (PULUMI, hook_secret), (ENVIRONMENT, env.get(ENV["jws_secret"])))
    function_name = pick(
        "function_name",
        (PULUMI, out.get("function_name")),
        (ENVIRONMENT, env.get(ENV["function_name"])),
    )
    log_group = pick(
        "log_group",
        (PULUMI, out.get("log_group_name")),
        (ENVIRONMENT, env.get(ENV["log_group"])),
        (DEFAULT, f"/aws/lambda/{function_name}" if function_name else None),
    )
    if log_group and sources["log_group"] == DEFAULT:
        sources["log_group"] = "derived from function name"
    pipeline = {
        name: pick(name, (PULUMI, out.get(output)), (ENVIRONMENT, env.get(ENV[name])))
        for name, output in PIPELINE_OUTPUTS.items()
    }
    if not pipeline["worker_log_group"] and pipeline["worker_function_name"]:
        pipeline["worker_log_group"] = f"/aws/lambda/{pipeline['worker_function_name']}"
        sources["worker_log_group"] = "derived from worker function name"
    config = RunbookConfig(
        stack=stack,
        region=region_value or DEFAULT_REGION,
        aws_endpoint_url=endpoint,
        webhook_url=url,
        webhook_host=pick("webhook_host", (ENVIRONMENT, env.get(ENV["webhook_host"]))),
        jws_secret=jws,
        distribution_ids=tuple(ids),
        distribution_id=chosen,
        invalidation_paths=tuple(paths or webhook_settings.DEFAULT_INVALIDATION_PATHS),
        function_name=function_name,
        log_group=log_group,
        netlify_site_id=pick(
            "netlify_site_id",
            (ENVIRONMENT, env.get(ENV["netlify_site_id"])),
            (STACK_FILE, filed.get("netlifySiteId")),
        ),
        secrets_parameter=pick(
            "secrets_parameter",
            (PULUMI, out.get("secrets_parameter_name")),
            (ENVIRONMENT, env.get(ENV["secrets_parameter"])),
        ),
        netlify_hook=hook,
        queue_url=pipeline["queue_url"],
        dead_letter_queue_url=pipeline["dead_letter_queue_url"],
        worker_function_name=pipeline["worker_function_name"],
        worker_log_group=pipeline["worker_log_group"],
        alarm_topic_arn=pipeline["alarm_topic_arn"],
        sources=sources,
        pulumi_note=stack_outputs.note,
    )
    return config
