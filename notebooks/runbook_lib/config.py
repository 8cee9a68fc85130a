"""Where the runbook's settings come from, and which source each one came from.

First match wins (``RunbookConfig.sources`` records it, naming the variable or output):
notebook parameter -> ``pulumi stack output`` (when the CLI is on PATH and ``NCW_NO_PULUMI`` is
not set) -> environment (``NCW_*``) -> the committed ``Pulumi.<stack>.yaml`` (non-secret values
only). The region is the stack's own (its ``region`` output, ``NCW_REGION`` or the stack file)
before the shell's ``AWS_REGION``, which is the default of whatever account the shell is in.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from function import webhook_settings
from infra.netlify_hook import JWS_SECRET_DATA_KEY
from infra.runbook_env import RUNBOOK_ENV
from infra.stack_files import PROJECT_DIR as REPO_ROOT

DEFAULT_REGION = "us-east-1"
DEFAULT_STACK = "dev"
ENDPOINT_ALB, ENDPOINT_FUNCTION_URL = "alb", "functionUrl"
# Set (to anything but "" or "0") to never run the pulumi CLI: tests and CI, where a logged-in
# CLI would turn a run with defaults into one against the real stack.
NO_PULUMI = "NCW_NO_PULUMI"
PULUMI_TIMEOUT_S = 60

ENV = RUNBOOK_ENV  # the names the local stack exports, in infra/runbook_env.py
# Where a value came from. An environment source names its variable ("environment NCW_REGION"),
# a stack output its output; the first three kinds mean "the operator pointed the runbook at a
# stack".
PARAMETER, PULUMI, ENVIRONMENT, FLEET_FILE, STACK_FILE, DEFAULT = (
    "parameter",
    "pulumi stack output",
    "environment",
    "fleet file",
    "stack file",
    "default",
)
LIVE_SOURCES = (PARAMETER, PULUMI, ENVIRONMENT, FLEET_FILE)
# The local stack (or an operator) may describe several stacks in one JSON file,
# {stack: {NCW_* variable: value}} ("" = not set): the variable names its path.
FLEET_FILE_VARIABLE = "NCW_FLEET_FILE"
# The pipeline's settings: RunbookConfig field -> stack output (the environment variable is
# RUNBOOK_ENV[field]). A stack deployed before the pipeline existed has none of them.
PIPELINE_OUTPUTS = {
    "queue_url": "queue_url",
    "dead_letter_queue_url": "dead_letter_queue_url",
    "worker_function_name": "worker_function_name",
    "worker_log_group": "worker_log_group_name",
    "alarm_topic_arn": "alarm_topic_arn",
}
# The reconciler (issue 11): only a stack with a Netlify API token has it.
RECONCILER_OUTPUTS = {
    "reconciler_function_name": "reconciler_function_name",
    "reconciler_log_group": "reconciler_log_group_name",
}
# Outputs whose ARN names the stack's account (arn:<partition>:<service>:<region>:<account>:...).
ACCOUNT_OUTPUTS = ("function_arn", "alarm_topic_arn")
_ARN = re.compile(r"arn:[a-z-]+:[a-z0-9-]+:[a-z0-9-]*:(?P<account>[0-9]{12}):.+")
_QUEUE_ACCOUNT = re.compile(r"https?://[^/]+/(?P<account>[0-9]{12})/[^/]+")


def source_kind(source: str) -> str:
    """The kind of a recorded source: ``"environment NCW_X"`` -> ``"environment"``."""
    for kind in (PARAMETER, PULUMI, ENVIRONMENT, FLEET_FILE, STACK_FILE):
        if source == kind or source.startswith(kind + " "):
            return kind
    return source


def is_live_source(source: str | None) -> bool:
    return bool(source) and source_kind(source or "") in LIVE_SOURCES


def as_list(value: Any) -> list[str]:
    """A list parameter as given: a list, or one comma-separated string (``papermill -p name
    /a,/b`` passes a string; iterating it would give its characters). Blanks are dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        return webhook_settings.split_list(value)
    if isinstance(value, Iterable):
        return [str(item).strip() for item in value if str(item).strip()]
    return [str(value)]


def account_of(value: Any) -> str | None:
    """The 12-digit account in an ARN or an SQS queue URL, or None."""
    text = str(value or "")
    match = _ARN.fullmatch(text) or _QUEUE_ACCOUNT.fullmatch(text)
    return match.group("account") if match else None


@dataclass(frozen=True)
class StackOutputs:
    outputs: dict[str, Any] | None
    note: str


def _pulumi_cli(
    args: list[str],
    *,
    which: Callable[[str], str | None],
    run: Callable[..., subprocess.CompletedProcess],
    cwd: Path,
    env: Mapping[str, str],
) -> tuple[Any, str]:
    """Run ``pulumi <args>`` (JSON output); (parsed JSON, note) or (None, why not)."""
    if env.get(NO_PULUMI, "") not in ("", "0"):
        return None, f"stack outputs not read: {NO_PULUMI} is set"
    pulumi = which("pulumi")
    if not pulumi:
        return None, "pulumi CLI not on PATH"
    what = " ".join(arg for arg in args if arg != "--show-secrets")
    try:
        done = run(
            [pulumi, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"pulumi {what} failed: {error}"
    if done.returncode != 0:
        # stderr names the problem (no such stack, not logged in); it holds no secret values.
        last = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        return None, f"pulumi {what} failed: {last[0]}"
    try:
        return json.loads(done.stdout or "null"), f"pulumi {what}"
    except json.JSONDecodeError:
        return None, f"pulumi {what} did not print JSON"


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
    outputs, note = _pulumi_cli(
        ["stack", "output", "--json", "--show-secrets", "--stack", stack],
        which=which,
        run=run,
        cwd=cwd,
        env=env,
    )
    if outputs is not None and not isinstance(outputs, dict):
        return StackOutputs(None, f"{note}: not a JSON object")
    return StackOutputs(outputs, note)


def list_stacks(
    *,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
    cwd: Path = REPO_ROOT,
    environ: Mapping[str, str] | None = None,
) -> tuple[list[str], str]:
    """The project's stacks from ``pulumi stack ls --json`` (names), and a note."""
    env = os.environ if environ is None else environ
    listed, note = _pulumi_cli(["stack", "ls", "--json"], which=which, run=run, cwd=cwd, env=env)
    if not isinstance(listed, list):
        return [], note
    names = [str(item.get("name")) for item in listed if isinstance(item, dict)]
    return [name for name in names if name and name != "None"], note


def read_fleet_file(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``NCW_FLEET_FILE``'s stacks, {stack: {variable: value}}; {} when unset or unreadable."""
    path = environ.get(FLEET_FILE_VARIABLE, "")
    if not path:
        return {}
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {
        str(stack): {str(key): str(value) for key, value in values.items() if value is not None}
        for stack, values in document.items()
        if isinstance(values, dict)
    }


def _stack_variables(environ: Mapping[str, str]) -> set[str]:
    """The variables that describe one stack (NCW_* of RUNBOOK_ENV), not the AWS access."""
    return {name for name in environ if name in set(ENV.values())}


def stack_environment(
    stack: str, environ: Mapping[str, str], label: str
) -> tuple[dict[str, str], str, str]:
    """The variables to read ``stack``'s settings from, their label, and a note.

    ``stack``'s entry of the fleet file wins; else the process environment, unless its
    ``NCW_STACK`` names another stack: then its NCW_* values describe that one and are left out.
    """
    fleet = read_fleet_file(environ)
    if stack in fleet:
        kept = {k: v for k, v in environ.items() if k not in _stack_variables(environ)}
        return (
            {**kept, **fleet[stack]},
            FLEET_FILE,
            f"stack {stack} read from {FLEET_FILE_VARIABLE}",
        )
    named = environ.get(ENV["stack"])
    if named and named != stack:
        kept = {k: v for k, v in environ.items() if k not in _stack_variables(environ)}
        return kept, label, f"the NCW_* variables describe stack {named}: not used for {stack}"
    return dict(environ), label, ""


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
    # Every distribution of the site; ``targets`` are the ones sections 6 and 8 act on.
    distribution_ids: tuple[str, ...] = ()
    distribution_id: str | None = None  # the parameter: narrows the targets to one
    invalidation_paths: tuple[str, ...] = webhook_settings.DEFAULT_INVALIDATION_PATHS
    endpoint: str = ENDPOINT_ALB
    function_name: str | None = None
    log_group: str | None = None
    netlify_site_id: str | None = None
    secrets_parameter: str | None = None
    # One hooks-API body per event (stack output ``netlify_hooks``), secrets inside.
    netlify_hooks: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    # The durable pipeline (section 3): queue -> worker -> CloudFront, and its alarms.
    queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    worker_function_name: str | None = None
    worker_log_group: str | None = None
    alarm_topic_arn: str | None = None
    # The reconciler (section 4), when the stack has one.
    reconciler_function_name: str | None = None
    reconciler_log_group: str | None = None
    # The account the stack's resources are in (from an output ARN), to compare with STS.
    stack_account: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    pulumi_note: str = ""

    @property
    def targets(self) -> tuple[str, ...]:
        """The distributions verified and invalidated: the parameter's one, else all."""
        if self.distribution_id:
            return (self.distribution_id,)
        return self.distribution_ids

    @property
    def live(self) -> bool:
        """True when the operator pointed the runbook at a stack (local or real).

        The committed stack file alone does not count: it names example distributions, and a
        notebook run with its defaults (CI, nbmake) must not reach out to a real account.
        """
        if self.aws_endpoint_url:
            return True
        return any(
            is_live_source(self.sources.get(name)) for name in ("distribution_ids", "webhook_url")
        )

    def missing(self) -> list[str]:
        """What the operator still has to provide, in words (one sentence each)."""
        gaps = []
        if not self.live:
            gaps.append(
                "No stack to talk to: install the pulumi CLI and log in, or set "
                "NCW_DISTRIBUTION_IDS and NCW_WEBHOOK_URL (and AWS_ENDPOINT_URL for the local "
                "stack: `make local` prints them), or pass the notebook parameters."
            )
        if not self.webhook_url:
            gaps.append("No webhook URL: pass `webhook_url`, set NCW_WEBHOOK_URL or deploy.")
        if not self.distribution_ids:
            gaps.append("No distributions: set NCW_DISTRIBUTION_IDS or pass `distribution_id`.")
        return gaps

    def why_not_live(self) -> str:
        return " ".join(self.missing()[:1]) or "no stack configured"

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
        used = sorted(
            {source_kind(source) for source in self.sources.values() if source != DEFAULT}
        )
        return ", ".join(used) or "defaults only"

    @property
    def webhook_endpoint(self) -> str | None:
        """The webhook URL without its query (no token): how our Netlify hooks are recognised."""
        if not self.webhook_url:
            return None
        parts = urllib.parse.urlsplit(self.webhook_url)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


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


def _hook_bodies(out: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """The stack's hook bodies: ``netlify_hooks`` (a list), or an older stack's single
    ``netlify_hook``."""
    hooks = out.get("netlify_hooks")
    if isinstance(hooks, list):
        return tuple(hook for hook in hooks if isinstance(hook, dict))
    single = out.get("netlify_hook")
    return (single,) if isinstance(single, dict) else ()


def load_config(
    stack: str | None = None,
    region: str | None = None,
    aws_endpoint_url: str | None = None,
    webhook_url: str | None = None,
    distribution_id: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stack_outputs: StackOutputs | None = None,
    project_dir: Path = REPO_ROOT,
    environment_label: str = ENVIRONMENT,
) -> RunbookConfig:
    """Resolve every setting the runbook needs and remember where each one came from.

    ``environment_label`` names where ``environ`` came from in the sources (the fleet view
    passes each stack's variables from its fleet file).
    """
    process_env = os.environ if environ is None else environ
    sources: dict[str, str] = {}

    def pick(name: str, *candidates: tuple[str, Any]) -> Any:
        value, source = _first(*candidates)
        sources[name] = source
        return value

    stack_name = str(
        pick(
            "stack",
            (PARAMETER, stack),
            (f"{environment_label} {ENV['stack']}", process_env.get(ENV["stack"])),
            (DEFAULT, DEFAULT_STACK),
        )
    )
    env, environment_label, env_note = stack_environment(stack_name, process_env, environment_label)

    def from_env(name: str) -> tuple[str, Any]:
        """An environment candidate for ``pick``, labelled with its variable."""
        return f"{environment_label} {name}", env.get(name)

    endpoint_url = pick(
        "aws_endpoint_url", (PARAMETER, aws_endpoint_url), from_env("AWS_ENDPOINT_URL")
    )
    if stack_outputs is None and endpoint_url:
        # Outputs describe the stack deployed in real AWS; with a local endpoint (the local
        # stack, `make demo`) they would send the test notification to the real webhook.
        stack_outputs = StackOutputs(None, "stack outputs not read: AWS_ENDPOINT_URL is set")
    if stack_outputs is None:
        stack_outputs = read_stack_outputs(stack_name, environ=env, cwd=project_dir)
    out = stack_outputs.outputs or {}
    filed = read_stack_file(stack_name, project_dir)
    hooks = _hook_bodies(out)

    def output(name: str) -> tuple[str, Any]:
        return f"{PULUMI} {name}", out.get(name)

    region_value = pick(
        "region",
        (PARAMETER, region),
        output("region"),
        from_env(ENV["region"]),
        (STACK_FILE, filed.get("aws:region")),
        # The shell's default region last: it belongs to whatever account the shell is in.
        from_env("AWS_REGION"),
        from_env("AWS_DEFAULT_REGION"),
        (DEFAULT, DEFAULT_REGION),
    )
    url = pick(
        "webhook_url",
        (PARAMETER, webhook_url),
        output("webhook_url"),
        from_env(ENV["webhook_url"]),
    )
    if sources["webhook_url"] == PARAMETER:
        # A token-less parameter keeps the token out of the executed notebook (papermill writes
        # parameters into it): the token comes from the stack output or NCW_WEBHOOK_URL.
        for source, tokened in (output("webhook_url"), from_env(ENV["webhook_url"])):
            joined = with_token_of(url, tokened)
            if joined != url:
                url, sources["webhook_token"] = joined, source
                break
    ids = pick(
        "distribution_ids",
        (f"{PULUMI} distribution_ids", as_list(out.get("distribution_ids"))),
        (
            f"{environment_label} {ENV['distribution_ids']}",
            as_list(env.get(ENV["distribution_ids"])),
        ),
        (STACK_FILE, as_list(filed.get("distributionIds"))),
    )
    ids = list(dict.fromkeys(ids or []))
    if distribution_id:
        sources["distribution_id"] = PARAMETER
        if distribution_id not in ids:
            ids.insert(0, distribution_id)
            if not is_live_source(sources["distribution_ids"]):
                sources["distribution_ids"] = PARAMETER
    paths = pick(
        "invalidation_paths",
        (f"{PULUMI} invalidation_paths", as_list(out.get("invalidation_paths"))),
        (
            f"{environment_label} {ENV['invalidation_paths']}",
            as_list(env.get(ENV["invalidation_paths"])),
        ),
        (STACK_FILE, as_list(filed.get("invalidationPaths"))),
    )
    hook_secret = next(
        (
            (hook.get("data") or {}).get(JWS_SECRET_DATA_KEY)
            for hook in hooks
            if (hook.get("data") or {}).get(JWS_SECRET_DATA_KEY)
        ),
        None,
    )
    jws = pick("jws_secret", (f"{PULUMI} netlify_hooks", hook_secret), from_env(ENV["jws_secret"]))
    endpoint = pick(
        "endpoint",
        output("endpoint"),
        from_env(ENV["endpoint"]),
        (STACK_FILE, filed.get("endpoint")),
        (DEFAULT, ENDPOINT_ALB),
    )
    function_name = pick("function_name", output("function_name"), from_env(ENV["function_name"]))
    log_group = pick(
        "log_group",
        output("log_group_name"),
        from_env(ENV["log_group"]),
        (
            "derived from the function name",
            f"/aws/lambda/{function_name}" if function_name else None,
        ),
    )
    pipeline = {
        name: pick(name, output(name_out), from_env(ENV[name]))
        for name, name_out in PIPELINE_OUTPUTS.items()
    }
    if not pipeline["worker_log_group"] and pipeline["worker_function_name"]:
        pipeline["worker_log_group"] = f"/aws/lambda/{pipeline['worker_function_name']}"
        sources["worker_log_group"] = "derived from the worker's name"
    reconciler = {
        name: pick(name, output(name_out), from_env(ENV[name]))
        for name, name_out in RECONCILER_OUTPUTS.items()
    }
    if not reconciler["reconciler_log_group"] and reconciler["reconciler_function_name"]:
        reconciler["reconciler_log_group"] = f"/aws/lambda/{reconciler['reconciler_function_name']}"
        sources["reconciler_log_group"] = "derived from the reconciler's name"
    account = pick(
        "stack_account",
        *((f"{PULUMI} {name}", account_of(out.get(name))) for name in ACCOUNT_OUTPUTS),
        (
            f"{environment_label} {ENV['alarm_topic_arn']}",
            account_of(env.get(ENV["alarm_topic_arn"])),
        ),
        (f"{environment_label} {ENV['queue_url']}", account_of(env.get(ENV["queue_url"]))),
    )
    return RunbookConfig(
        stack=stack_name,
        region=region_value,
        aws_endpoint_url=endpoint_url,
        webhook_url=url,
        webhook_host=pick("webhook_host", from_env(ENV["webhook_host"])),
        jws_secret=jws,
        distribution_ids=tuple(ids),
        distribution_id=distribution_id or None,
        invalidation_paths=tuple(paths or webhook_settings.DEFAULT_INVALIDATION_PATHS),
        endpoint=endpoint,
        function_name=function_name,
        log_group=log_group,
        netlify_site_id=pick(
            "netlify_site_id",
            from_env(ENV["netlify_site_id"]),
            (STACK_FILE, filed.get("netlifySiteId")),
        ),
        secrets_parameter=pick(
            "secrets_parameter",
            output("secrets_parameter_name"),
            from_env(ENV["secrets_parameter"]),
        ),
        netlify_hooks=hooks,
        queue_url=pipeline["queue_url"],
        dead_letter_queue_url=pipeline["dead_letter_queue_url"],
        worker_function_name=pipeline["worker_function_name"],
        worker_log_group=pipeline["worker_log_group"],
        alarm_topic_arn=pipeline["alarm_topic_arn"],
        reconciler_function_name=reconciler["reconciler_function_name"],
        reconciler_log_group=reconciler["reconciler_log_group"],
        stack_account=account,
        sources=sources,
        pulumi_note="; ".join(note for note in (stack_outputs.note, env_note) if note),
    )
