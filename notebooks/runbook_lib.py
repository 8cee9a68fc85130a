"""The operator runbook's logic: every notebook section calls one function here.

Each section function returns data (a dataclass, a pandas DataFrame) and never prints secrets;
``show`` turns a result into notebook output. Nothing here needs a notebook: the tests call the
same functions with moto, a fake clock and a local fake of Netlify's API.

Where the runbook's settings come from, first match wins (``RunbookConfig.sources`` records it):
notebook parameter -> ``pulumi stack output`` (when the CLI is on PATH) -> environment
(``NCW_*``, ``AWS_*``) -> the committed ``Pulumi.<stack>.yaml`` (non-secret values only).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
import pandas as pd

NOTEBOOK_DIR = Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOK_DIR.parent
# function/ ships to Lambda as a bare folder; the runbook reuses its path rules and caller
# reference so that "validated like the function" and "found by its reference" stay true.
for _folder in (REPO_ROOT / "function", REPO_ROOT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import webhook_settings  # noqa: E402  (needs the sys.path entry above)

caller_reference = webhook_settings.caller_reference

DEFAULT_REGION = "us-east-1"
NETLIFY_API_URL = "https://api.netlify.com/api/v1"
NETLIFY_EVENT = "deploy_created"  # the API name of the UI's "Deploy succeeded"
# The key of a url hook's ``data`` that holds the "JWS secret token". Netlify's OpenAPI spec types
# ``Hook.data`` as a free-form object and the deploy-notifications docs only name the UI field, so
# this key comes from integrations that create signed hooks through the API (e.g. simstudioai/sim
# PR #4518, "passed via data.signature_secret"); it is also the key the Pulumi program's
# ``netlify_hook`` output uses. If Netlify ever renames it, the function's signature check fails
# loudly (401), it does not silently accept unsigned requests.
JWS_SECRET_DATA_KEY = "signature_secret"  # noqa: S105 (a key name, not a secret)

FREE_PATHS_PER_MONTH = 1000  # per AWS account, all distributions together
PRICE_PER_PATH_USD = 0.005
USD = "\\$"  # escaped: a bare $ pair would turn notebook markdown into MathJax

ENV = {
    "stack": "NCW_STACK",
    "webhook_url": "NCW_WEBHOOK_URL",
    "webhook_host": "NCW_WEBHOOK_HOST",
    "jws_secret": "NCW_JWS_SECRET",
    "distribution_ids": "NCW_DISTRIBUTION_IDS",
    "invalidation_paths": "NCW_INVALIDATION_PATHS",
    "function_name": "NCW_FUNCTION_NAME",
    "log_group": "NCW_LOG_GROUP",
    "netlify_site_id": "NCW_NETLIFY_SITE_ID",
    "secrets_parameter": "NCW_SECRETS_PARAMETER",
}
# Where a value came from; the first three mean "the operator pointed the runbook at a stack".
PARAMETER, PULUMI, ENVIRONMENT, STACK_FILE, DEFAULT = (
    "parameter",
    "pulumi stack output",
    "environment",
    "stack file",
    "default",
)
LIVE_SOURCES = (PARAMETER, PULUMI, ENVIRONMENT)


# --------------------------------------------------------------------------------------------
# Masking: nothing the runbook shows carries a whole secret.

_SECRET_QUERY = re.compile(
    r"(?P<key>(?:^|[?&;])(?:token|secret|signature|key|access_token)=)(?P<value>[^&#;\s]*)",
    re.IGNORECASE,
)
_SECRET_TEXT = re.compile(
    r"(?P<key>(?:token|secret|signature_secret|jws_secret|signature|authorization)"
    r"""["']?\s*[:=]\s*["']?(?:bearer\s+)?)(?P<value>[^"'&\s,;}]+)""",
    re.IGNORECASE,
)


def mask_secret(value: str | None, keep: int = 4) -> str:
    """``abcd…``: enough to tell two secrets apart, not enough to use one."""
    if not value:
        return ""
    return value[:keep] + "…" if len(value) > 2 * keep else "…"


def mask_url(url: str | None) -> str:
    """The URL with the value of ``token`` (and other secret-looking query keys) masked."""
    if not url:
        return ""
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    masked = _SECRET_QUERY.sub(lambda m: m.group("key") + mask_secret(m.group("value")), "?" + rest)
    return base + masked


def mask_text(text: str) -> str:
    """Free text (a log line, an error body) with anything token-like masked."""
    return _SECRET_TEXT.sub(lambda m: m.group("key") + mask_secret(m.group("value")), text)


def mask_hook(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Netlify hook body safe to show: the URL's token and the JWS secret masked."""
    if body is None:
        return None
    shown = json.loads(json.dumps(body))
    data = shown.get("data") or {}
    if "url" in data:
        data["url"] = mask_url(data["url"])
    if data.get(JWS_SECRET_DATA_KEY):
        data[JWS_SECRET_DATA_KEY] = mask_secret(data[JWS_SECRET_DATA_KEY])
    return shown


# --------------------------------------------------------------------------------------------
# Configuration: parameters, stack outputs, environment, stack file.


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
) -> StackOutputs:
    """``pulumi stack output --json --show-secrets`` when the CLI is present, else None + why."""
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

    def source_summary(self) -> str:
        used = sorted({source for source in self.sources.values() if source != DEFAULT})
        return ", ".join(used) or "defaults only"


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
        stack_outputs = read_stack_outputs(stack)
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
        (ENVIRONMENT, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")),
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
        sources=sources,
        pulumi_note=stack_outputs.note,
    )
    return config


class AwsClients:
    """boto3 clients for the runbook, made on first use, with short timeouts (no hanging)."""

    def __init__(self, config: RunbookConfig) -> None:
        self.config = config

    @cached_property
    def _session(self):
        import boto3

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


def _error_text(error: BaseException) -> str:
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if error else None
    text = f"{code}: {error}" if code else f"{type(error).__name__}: {error}"
    return mask_text(text)


# --------------------------------------------------------------------------------------------
# 1. Where am I?


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
        result.problems.append(f"cannot identify the AWS account: {_error_text(error)}")
    return result


# --------------------------------------------------------------------------------------------
# 2. Distribution health


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
            return f"### `{self.distribution_id}`\n\n❌ {self.error}"
        verdict = "✅ matches the site's design" if self.healthy else "⚠️ needs attention"
        lines = [
            f"### `{self.distribution_id}` — {verdict}",
            f"- domain: `{self.domain_name}`; status: **{self.status}**; "
            f"enabled: **{self.enabled}**; aliases: {', '.join(self.aliases) or '(none)'}",
        ]
        lines += [f"- ⚠️ {flag}" for flag in self.flags]
        return "\n".join(lines)

    def tables(self) -> list[pd.DataFrame]:
        return [self.origins, self.behaviors]


def _items(block: Mapping[str, Any] | None) -> list[Any]:
    return list((block or {}).get("Items") or [])


def distribution_health(cloudfront, distribution_id: str) -> DistributionHealth:
    """Status, origins and behaviors of one distribution, with what breaks the site's design.

    The design: Netlify serves the site (default behavior), an S3 origin serves ``/pdf/*``.
    """
    health = DistributionHealth(distribution_id)
    try:
        dist = cloudfront.get_distribution(Id=distribution_id)["Distribution"]
    except Exception as error:
        health.error = f"cannot read the distribution: {_error_text(error)}"
        return health
    cfg = dist.get("DistributionConfig", {})
    health.domain_name = dist.get("DomainName")
    health.status = dist.get("Status")
    health.enabled = bool(cfg.get("Enabled"))
    health.aliases = tuple(_items(cfg.get("Aliases")))
    origins = {o.get("Id"): o for o in _items(cfg.get("Origins"))}
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
        (b.get("PathPattern"), b) for b in _items(cfg.get("CacheBehaviors"))
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


# --------------------------------------------------------------------------------------------
# 3. Trigger: a deploy notification exactly as Netlify sends it


def netlify_deploy_payload(
    site_id: str,
    deploy_id: str | None = None,
    context: str = "production",
    state: str = "ready",
) -> dict[str, Any]:
    """A realistic Netlify Deploy object (what a deploy notification's body is)."""
    deploy_id = deploy_id or secrets.token_hex(12)
    build_id = secrets.token_hex(12)
    commit = secrets.token_hex(20)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    started = now - timedelta(seconds=42)
    created = started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond // 1000:03d}Z"
    name = "runbook-example"
    branch = "main" if context == "production" else "feature"
    return {
        "id": deploy_id,
        "site_id": site_id,
        "build_id": build_id,
        "state": state,
        "name": name,
        "url": f"https://{name}.netlify.app",
        "ssl_url": f"https://{name}.netlify.app",
        "admin_url": f"https://app.netlify.com/sites/{name}",
        "deploy_url": f"http://{deploy_id}--{name}.netlify.app",
        "deploy_ssl_url": f"https://{deploy_id}--{name}.netlify.app",
        "created_at": created,
        "updated_at": stamp,
        "user_id": secrets.token_hex(12),
        "error_message": None if state != "error" else "Build script returned non-zero exit code",
        "required": [],
        "required_functions": [],
        "commit_ref": commit,
        "review_id": None,
        "branch": branch,
        "commit_url": f"https://github.com/example/{name}/commit/{commit}",
        "skipped": None,
        "locked": None,
        "log_access_attributes": {
            "type": "firebase",
            "url": f"https://netlify-builds1.firebaseio.com/builds/{build_id}/log",
            "endpoint": "https://netlify-builds1.firebaseio.com",
            "path": f"/builds/{build_id}/log",
            "token": "dummy-log-token-" + secrets.token_hex(8),
        },
        "title": "Runbook test notification",
        "review_url": None,
        "published_at": stamp if state == "ready" else None,
        "context": context,
        "deploy_time": 42,
        "available_functions": [],
        "screenshot_url": None,
        "committer": "runbook",
        "skipped_log": None,
        "manual_deploy": False,
        "file_tracking_optimization": True,
        "plugin_state": "success",
        "has_edge_handlers": False,
        "links": {
            "permalink": f"https://{deploy_id}--{name}.netlify.app",
            "alias": f"https://{name}.netlify.app",
        },
        "framework": "unknown",
        "function_schedules": [],
        "summary": {"status": state, "messages": []},
    }


def netlify_signature(body: bytes, jws_secret: str) -> str:
    """The ``X-Webhook-Signature`` Netlify sends: HS256 JWT, ``iss`` and the body's SHA-256."""
    claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
    with warnings.catch_warnings():
        # Netlify signs with whatever secret the hook holds; its strength is the stack
        # config's business (netlifyJwsSecret), not a reason to clutter the runbook's output.
        warnings.simplefilter("ignore", getattr(jwt.warnings, "InsecureKeyLengthWarning", Warning))
        return jwt.encode(claims, jws_secret, algorithm="HS256")


@dataclass
class NotificationResult:
    status: int
    body: Any
    headers: dict[str, str]
    reason: str = ""
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def invalidations(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict):
            return list(self.body.get("invalidations") or [])
        return []


def send_deploy_notification(
    webhook_url: str,
    payload: Mapping[str, Any],
    jws_secret: str | None = None,
    host: str | None = None,
    event: str = NETLIFY_EVENT,
    timeout: float = 10,
) -> NotificationResult:
    """POST ``payload`` as Netlify does; any HTTP answer is a result, never an exception.

    No proxies and no redirects are followed (Netlify does not follow them either). ``host``
    overrides the Host header: the local stack listens on 127.0.0.1 but routes by domain.
    """
    body = json.dumps(payload).encode()
    parts = urllib.parse.urlsplit(webhook_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {mask_url(webhook_url)}")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Netlify",
        "X-Netlify-Event": event,
    }
    if host:
        headers["Host"] = host
    if jws_secret:
        headers["X-Webhook-Signature"] = netlify_signature(body, jws_secret)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        status, reason = response.status, response.reason
    finally:
        connection.close()
    try:
        parsed = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = None
    return NotificationResult(
        status=status,
        body=parsed,
        headers=answer_headers,
        reason=reason,
        elapsed_s=round(time.monotonic() - started, 3),
    )


@dataclass
class TriggerResult:
    deploy_id: str | None
    sent: bool
    result: NotificationResult | None = None
    message: str = ""
    signed: bool = False
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.result and self.result.accepted)

    def markdown(self) -> str:
        lines = [self.message]
        if self.result is not None:
            shown = (
                json.dumps(self.result.body, indent=2, ensure_ascii=False)
                if self.result.body is not None
                else ""
            )
            lines.append(
                f"\nAnswer: **{self.result.status} {self.result.reason}** "
                f"in {self.result.elapsed_s:.2f} s ({'signed' if self.signed else 'unsigned'})."
            )
            if shown:
                lines.append(f"\n```json\n{mask_text(shown)}\n```")
            meaning = explain_answer(self.result.status, self.result.body)
            if meaning:
                lines.append(f"\n{meaning}")
        if self.error:
            lines.append(f"\n❌ {self.error}")
        return "\n".join(lines)


def trigger(
    config: RunbookConfig,
    deploy_id: str | None = None,
    *,
    send: Callable[..., NotificationResult] = send_deploy_notification,
) -> TriggerResult:
    """Send a signed test notification, or report the one the caller already sent."""
    if deploy_id:
        return TriggerResult(
            deploy_id=deploy_id,
            sent=False,
            message=f"Deploy `{deploy_id}` was notified by the caller (e.g. `make demo`): "
            "not sending another; the next section looks for its invalidation.",
        )
    if not config.live or not config.webhook_url:
        return TriggerResult(
            deploy_id=None,
            sent=False,
            message="**Skipped:** " + " ".join(config.missing() or ["no webhook URL"]),
        )
    site_id = config.netlify_site_id or "00000000-0000-4000-8000-000000000000"
    payload = netlify_deploy_payload(site_id)
    outcome = TriggerResult(
        deploy_id=payload["id"],
        sent=True,
        signed=bool(config.jws_secret),
        message=f"Sent a `{NETLIFY_EVENT}` notification for deploy `{payload['id']}` "
        f"(site `{site_id}`, context `production`) to {mask_url(config.webhook_url)}"
        + (f" with Host `{config.webhook_host}`" if config.webhook_host else "")
        + ".",
    )
    try:
        outcome.result = send(
            config.webhook_url, payload, jws_secret=config.jws_secret, host=config.webhook_host
        )
    except (OSError, http.client.HTTPException, ValueError) as error:
        outcome.error = (
            f"no answer from the webhook: {mask_text(str(error))}. Is the ALB (or `make local`) "
            "up, and does the URL's host resolve?"
        )
    return outcome


# --------------------------------------------------------------------------------------------
# 4. Verify: find the function's invalidation by its caller reference and wait for it


def is_completed(status: str | None) -> bool:
    """CloudFront says ``Completed``; moto says ``COMPLETED``."""
    return (status or "").strip().lower() == "completed"


def reference_prefix(deploy_id: str) -> str:
    """The part of every caller reference for ``deploy_id`` that does not depend on paths."""
    return caller_reference(deploy_id, ["/"]).rsplit("-", 1)[0] + "-"


@dataclass
class FoundInvalidation:
    distribution_id: str
    invalidation_id: str
    status: str
    caller_reference: str
    paths: tuple[str, ...]
    create_time: datetime | None
    matched_by: str  # "reference" or "deploy prefix"


def _summaries(cloudfront, distribution_id: str, limit: int) -> list[dict[str, Any]]:
    """Newest first, at most ``limit`` invalidation summaries."""
    found: list[dict[str, Any]] = []
    marker = ""
    while len(found) < limit:
        kwargs = {"DistributionId": distribution_id, "MaxItems": str(min(100, limit))}
        if marker:
            kwargs["Marker"] = marker
        page = cloudfront.list_invalidations(**kwargs)["InvalidationList"]
        found += page.get("Items") or []
        marker = page.get("NextMarker") or ""
        if not page.get("IsTruncated") or not marker:
            break
    epoch = datetime.min.replace(tzinfo=UTC)
    found.sort(key=lambda item: item.get("CreateTime") or epoch, reverse=True)
    return found[:limit]


def find_invalidation(
    cloudfront,
    distribution_id: str,
    reference: str,
    *,
    prefix: str | None = None,
    scan_limit: int = 100,
) -> FoundInvalidation | None:
    """The invalidation whose CallerReference is ``reference`` (or, failing that, starts with
    ``prefix``: same deploy, other paths), among the ``scan_limit`` newest. Listing does not
    show references, so each candidate costs one ``GetInvalidation``."""
    fallback: FoundInvalidation | None = None
    for summary in _summaries(cloudfront, distribution_id, scan_limit):
        item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=summary["Id"])
        invalidation = item["Invalidation"]
        batch = invalidation.get("InvalidationBatch", {})
        ref = batch.get("CallerReference", "")
        candidate = FoundInvalidation(
            distribution_id=distribution_id,
            invalidation_id=invalidation["Id"],
            status=invalidation.get("Status", ""),
            caller_reference=ref,
            paths=tuple(_items(batch.get("Paths"))),
            create_time=invalidation.get("CreateTime"),
            matched_by="reference",
        )
        if ref == reference:
            return candidate
        if prefix and fallback is None and ref.startswith(prefix):
            candidate.matched_by = "deploy prefix"
            fallback = candidate
    return fallback


@dataclass
class VerifyResult:
    distribution_id: str | None
    deploy_id: str | None
    caller_reference: str | None
    found: bool = False
    invalidation_id: str | None = None
    status: str | None = None
    completed: bool = False
    timed_out: bool = False
    elapsed_s: float = 0.0
    polls: int = 0
    matched_by: str | None = None
    guidance: str = ""
    skipped: str | None = None
    error: str | None = None

    def markdown(self) -> str:
        if self.skipped:
            return f"**Skipped:** {self.skipped}"
        if self.error:
            return f"❌ Cannot check CloudFront: {self.error}"
        if self.completed:
            head = (
                f"✅ Invalidation `{self.invalidation_id}` on `{self.distribution_id}` is "
                f"**{self.status}** after {self.elapsed_s:.1f} s ({self.polls} check(s))."
            )
        elif self.found:
            head = (
                f"⏳ Invalidation `{self.invalidation_id}` on `{self.distribution_id}` is still "
                f"**{self.status}** after {self.elapsed_s:.1f} s."
            )
        else:
            head = (
                f"❌ No invalidation for deploy `{self.deploy_id}` on `{self.distribution_id}` "
                f"after {self.elapsed_s:.1f} s."
            )
        lines = [head, f"- caller reference: `{self.caller_reference}`"]
        if self.matched_by == "deploy prefix":
            lines.append(
                "- matched by deploy id only: the function invalidated other paths than the "
                "runbook expects (set NCW_INVALIDATION_PATHS to the stack's invalidationPaths)"
            )
        if self.guidance:
            lines.append(f"\n{self.guidance}")
        return "\n".join(lines)


def _progress_bar(total: float, description: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="s",
        file=sys.stdout,
        disable=not enabled,
        bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [elapsed {elapsed}]",
    )


def wait_for_invalidation(
    cloudfront,
    distribution_id: str,
    deploy_id: str,
    paths: Iterable[str],
    *,
    timeout_s: float = 300,
    poll_interval_s: float = 10,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
    scan_limit: int = 100,
) -> VerifyResult:
    """Find the function's invalidation for ``deploy_id`` and wait until it is Completed.

    Stops at ``timeout_s`` with guidance instead of hanging. ``clock`` and ``sleep`` are
    injectable so tests run the loop without real waiting.
    """
    reference = caller_reference(deploy_id, tuple(paths))
    prefix = reference_prefix(deploy_id)
    result = VerifyResult(distribution_id, deploy_id, reference)
    start = clock()
    bar = _progress_bar(timeout_s, f"{distribution_id}", progress)
    try:
        while True:
            elapsed = clock() - start
            result.polls += 1
            if not result.found:
                found = find_invalidation(
                    cloudfront, distribution_id, reference, prefix=prefix, scan_limit=scan_limit
                )
                if found:
                    result.found = True
                    result.invalidation_id = found.invalidation_id
                    result.status = found.status
                    result.matched_by = found.matched_by
                    result.caller_reference = found.caller_reference
            else:
                current = cloudfront.get_invalidation(
                    DistributionId=distribution_id, Id=result.invalidation_id
                )
                result.status = current["Invalidation"].get("Status")
            bar.n = min(elapsed, timeout_s)
            bar.set_description_str(f"{distribution_id} {result.status or 'looking for it'}")
            result.elapsed_s = elapsed
            if is_completed(result.status):
                result.completed = True
                bar.n = timeout_s  # a full bar: done
                bar.refresh()
                break
            if elapsed >= timeout_s:
                result.timed_out = True
                break
            sleep(max(0.0, min(poll_interval_s, timeout_s - elapsed)))
    finally:
        bar.close()

    if result.timed_out and result.found:
        result.guidance = (
            f"Stopped waiting after {timeout_s:.0f} s (`wait_timeout_s`). CloudFront usually "
            "completes within a minute to a few minutes; waits of 10+ minutes happen, and many "
            "invalidations in progress queue behind each other. Re-run this cell: it finds the "
            "same invalidation again by its caller reference, nothing new is created."
        )
    elif result.timed_out:
        result.guidance = (
            f"Nothing with this reference appeared within {timeout_s:.0f} s. Check the answer in "
            "section 3 (anything but 202 means no invalidation), then the function's errors in "
            "section 7. If the notification was sent long ago, the invalidation may be older than "
            "the newest invalidations scanned."
        )
    return result


def verify(
    config: RunbookConfig,
    aws: AwsClients | None,
    deploy_id: str | None,
    *,
    wait_timeout_s: float = 300,
    poll_interval_s: float = 10,
    **kwargs: Any,
) -> VerifyResult:
    if not config.live or not config.distribution_id:
        return VerifyResult(
            config.distribution_id,
            deploy_id,
            None,
            skipped=" ".join(config.missing()) or "no distribution",
        )
    if not deploy_id:
        return VerifyResult(
            config.distribution_id,
            None,
            None,
            skipped="no deploy to look for: the trigger did not send a notification "
            "(pass `deploy_id` to verify a real Netlify deploy).",
        )
    aws = aws or AwsClients(config)
    try:
        return wait_for_invalidation(
            aws.cloudfront,
            config.distribution_id,
            deploy_id,
            config.invalidation_paths,
            timeout_s=wait_timeout_s,
            poll_interval_s=poll_interval_s,
            **kwargs,
        )
    except Exception as error:  # credentials, permissions, endpoint: a finding, not a crash
        reference = caller_reference(deploy_id, config.invalidation_paths)
        return VerifyResult(config.distribution_id, deploy_id, reference, error=_error_text(error))


# --------------------------------------------------------------------------------------------
# 5. History and cost

HISTORY_COLUMNS = [
    "distribution_id",
    "invalidation_id",
    "status",
    "created",
    "path_count",
    "paths",
    "caller_reference",
    "origin",
]


def _origin_of(reference: str) -> str:
    if reference.startswith("netlify-"):
        return "netlify deploy"
    if reference.startswith("runbook-"):
        return "runbook (manual)"
    return "other"


def invalidation_history(
    cloudfront, distribution_ids: Iterable[str], limit: int = 25
) -> pd.DataFrame:
    """The newest ``limit`` invalidations of each distribution, newest first."""
    rows = []
    for distribution_id in distribution_ids:
        for summary in _summaries(cloudfront, distribution_id, limit):
            item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=summary["Id"])
            invalidation = item["Invalidation"]
            batch = invalidation.get("InvalidationBatch", {})
            paths = _items(batch.get("Paths"))
            reference = batch.get("CallerReference", "")
            rows.append(
                {
                    "distribution_id": distribution_id,
                    "invalidation_id": invalidation["Id"],
                    "status": invalidation.get("Status"),
                    "created": pd.Timestamp(invalidation.get("CreateTime")).tz_convert("UTC"),
                    "path_count": len(paths),
                    "paths": ", ".join(paths[:5]) + (" …" if len(paths) > 5 else ""),
                    "caller_reference": reference,
                    "origin": _origin_of(reference),
                }
            )
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values("created", ascending=False, ignore_index=True)
    return frame


def paths_cost_usd(paths: int, free_paths: int = FREE_PATHS_PER_MONTH) -> float:
    """CloudFront's price for ``paths`` invalidation paths in one month (``/*`` is one path)."""
    return round(max(0, paths - free_paths) * PRICE_PER_PATH_USD, 4)


@dataclass
class MonthlyUsage:
    month: str
    invalidations: int
    paths: int
    free_paths: int
    billable_paths: int
    estimated_cost_usd: float
    note: str

    def markdown(self) -> str:
        return (
            f"**{self.month}:** {self.invalidations} invalidations, {self.paths} paths of the "
            f"{self.free_paths:,} free → {self.billable_paths} billable, estimated "
            f"**{USD}{self.estimated_cost_usd:.2f}** (at {USD}{PRICE_PER_PATH_USD}/path).\n\n"
            f"{self.note}"
        )


def monthly_usage(history: pd.DataFrame, now: datetime | None = None) -> MonthlyUsage:
    """This month's paths and the estimated cost, from the history table."""
    now = now or datetime.now(UTC)
    month = now.strftime("%Y-%m")
    if history.empty:
        this_month = history
    else:
        created = pd.to_datetime(history["created"], utc=True)
        this_month = history[created.dt.strftime("%Y-%m") == month]
    paths = int(this_month["path_count"].sum()) if not this_month.empty else 0
    return MonthlyUsage(
        month=month,
        invalidations=len(this_month),
        paths=paths,
        free_paths=FREE_PATHS_PER_MONTH,
        billable_paths=max(0, paths - FREE_PATHS_PER_MONTH),
        estimated_cost_usd=paths_cost_usd(paths),
        note=(
            "The 1,000 free paths are per AWS account, shared by every distribution (and every "
            "site) in it, and this table only holds the newest invalidations of these "
            "distributions: treat the figure as a lower bound. A wildcard such as `/*` counts as "
            "one path."
        ),
    )


def history_chart(history: pd.DataFrame, now: datetime | None = None, days: int = 30):
    """Invalidations per day (last ``days``) and paths per month against the free 1,000."""
    import matplotlib.pyplot as plt

    now = now or datetime.now(UTC)
    figure, (per_day, per_month) = plt.subplots(1, 2, figsize=(11, 3.5))
    if history.empty:
        for axis in (per_day, per_month):
            axis.text(0.5, 0.5, "no invalidations yet", ha="center", va="center")
            axis.set_axis_off()
        return figure
    created = pd.to_datetime(history["created"], utc=True)
    start = (pd.Timestamp(now).tz_convert("UTC") - pd.Timedelta(days=days - 1)).normalize()
    day_index = pd.date_range(start, periods=days, freq="D", tz="UTC")
    counts = created.dt.normalize().value_counts().reindex(day_index, fill_value=0)
    per_day.bar(counts.index.strftime("%m-%d"), counts.values, color="#2b7bb9")
    per_day.set_title(f"Invalidations per day (last {days} days)")
    per_day.set_ylabel("invalidations")
    per_day.tick_params(axis="x", labelrotation=90, labelsize=7)
    months = history.assign(month=created.dt.strftime("%Y-%m")).groupby("month")["path_count"]
    monthly = months.sum().sort_index()
    per_month.bar(monthly.index, monthly.values, color="#e07b39")
    per_month.axhline(FREE_PATHS_PER_MONTH, color="grey", linestyle="--", label="1,000 free paths")
    per_month.set_title("Paths per month (free tier is per account)")
    per_month.set_ylabel("paths")
    per_month.legend(loc="upper left")
    figure.tight_layout()
    return figure


@dataclass
class HistoryResult:
    table: pd.DataFrame
    usage: MonthlyUsage | None
    skipped: str | None = None
    error: str | None = None

    def markdown(self) -> str:
        if self.skipped:
            return f"**Skipped:** {self.skipped}"
        if self.error:
            return f"❌ Cannot list invalidations: {self.error}"
        if self.table.empty:
            return "No invalidations on these distributions yet."
        return f"{len(self.table)} most recent invalidation(s), newest first."

    def contains(self, invalidation_id: str | None) -> bool:
        return bool(invalidation_id) and invalidation_id in set(self.table["invalidation_id"])


def history(config: RunbookConfig, aws: AwsClients | None, limit: int = 25) -> HistoryResult:
    if not config.live or not config.distribution_ids:
        empty = pd.DataFrame(columns=HISTORY_COLUMNS)
        return HistoryResult(empty, None, skipped=" ".join(config.missing()))
    aws = aws or AwsClients(config)
    try:
        table = invalidation_history(aws.cloudfront, config.distribution_ids, limit)
    except Exception as error:  # a finding, not a crash
        empty = pd.DataFrame(columns=HISTORY_COLUMNS)
        return HistoryResult(empty, None, error=_error_text(error))
    return HistoryResult(table, monthly_usage(table))


# --------------------------------------------------------------------------------------------
# 6. Manual invalidation


def manual_reference(paths: Iterable[str], now: datetime | None = None) -> str:
    """A reference for an operator's invalidation: re-running the cell within the same minute
    reuses it (CloudFront returns the existing invalidation), a later run makes a new one."""
    now = now or datetime.now(UTC)
    digest = hashlib.sha256("\n".join(sorted(set(paths))).encode()).hexdigest()[:16]
    return f"runbook-manual-{now:%Y%m%dT%H%M}-{digest}"


@dataclass
class ManualInvalidation:
    distribution_id: str | None
    paths: tuple[str, ...]
    dry_run: bool
    problems: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None
    created: bool = False
    invalidation_id: str | None = None
    status: str | None = None
    error: str | None = None
    skipped: str | None = None

    @property
    def estimated_cost_note(self) -> str:
        return (
            f"{len(self.paths)} path(s) count against the account's {FREE_PATHS_PER_MONTH:,} free "
            f"paths this month, then {USD}{PRICE_PER_PATH_USD}/path."
        )

    def markdown(self) -> str:
        if self.skipped:
            return f"**Skipped:** {self.skipped}"
        if self.problems:
            return "❌ Not sent, fix the paths first:\n" + "\n".join(
                f"- {problem}" for problem in self.problems
            )
        if self.error:
            return f"❌ CloudFront refused: {self.error}"
        request = f"\n```json\n{json.dumps(self.request, indent=2)}\n```"
        if self.dry_run:
            return (
                "**Dry run** (`dry_run=True`): this request would be sent. "
                f"{self.estimated_cost_note} Set `dry_run = False` to send it.{request}"
            )
        return (
            f"✅ Created invalidation `{self.invalidation_id}` ({self.status}) on "
            f"`{self.distribution_id}`. {self.estimated_cost_note}{request}"
        )


def manual_invalidation(
    cloudfront,
    distribution_id: str,
    paths: Iterable[str],
    *,
    dry_run: bool = True,
    now: datetime | None = None,
) -> ManualInvalidation:
    """Invalidate ``paths`` validated exactly like the function's; with ``dry_run`` only show."""
    paths = tuple(paths or ())
    result = ManualInvalidation(distribution_id, paths, dry_run)
    if not paths:
        result.problems.append("no paths given (`manual_paths`)")
    elif len(paths) > webhook_settings.MAX_INVALIDATION_PATHS:
        result.problems.append(
            f"{len(paths)} paths; CloudFront takes at most "
            f"{webhook_settings.MAX_INVALIDATION_PATHS} in one invalidation"
        )
    result.problems += [
        problem for problem in map(webhook_settings.invalidation_path_problem, paths) if problem
    ]
    if result.problems:
        return result
    webhook_settings.validate_invalidation_paths(paths)  # the function's own rule, once more
    result.request = {
        "DistributionId": distribution_id,
        "InvalidationBatch": {
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": manual_reference(paths, now),
        },
    }
    if dry_run:
        return result
    try:
        answer = cloudfront.create_invalidation(**result.request)["Invalidation"]
    except Exception as error:
        result.error = _error_text(error)
        return result
    result.created = True
    result.invalidation_id = answer["Id"]
    result.status = answer.get("Status")
    return result


def manual(
    config: RunbookConfig, aws: AwsClients | None, paths: Iterable[str], *, dry_run: bool = True
) -> ManualInvalidation:
    paths = tuple(paths or ())
    if not config.distribution_id:
        return ManualInvalidation(None, paths, dry_run, skipped=" ".join(config.missing()))
    if not config.live and not dry_run:
        return ManualInvalidation(
            config.distribution_id, paths, dry_run, skipped=" ".join(config.missing())
        )
    client = (aws or AwsClients(config)).cloudfront if config.live and not dry_run else None
    return manual_invalidation(client, config.distribution_id, paths, dry_run=dry_run)


# --------------------------------------------------------------------------------------------
# 7. Troubleshooting

# Term filter for CloudWatch Logs (either term); re-checked here because not every backend
# (moto) understands ``?`` alternatives.
ERROR_FILTER_PATTERN = '?ERROR ?CRITICAL ?Traceback ?"Task timed out"'
_ERROR_MARKERS = ("ERROR", "CRITICAL", "Traceback", "Task timed out")


def _parse_log_message(message: str) -> dict[str, Any]:
    text = message.strip()
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            known = {"timestamp", "level", "message", "logger", "requestId", "time", "msg"}
            extra = {k: v for k, v in record.items() if k not in known}
            return {
                "level": str(record.get("level", "")).upper(),
                "message": str(record.get("message") or record.get("msg") or ""),
                "details": json.dumps(extra, default=str) if extra else "",
                "request_id": record.get("requestId", ""),
            }
    # Lambda's text format: "[ERROR]\t2024-01-01T00:00:00.000Z\t<request id>\tmessage"
    match = re.match(r"\[(\w+)\]\s+\S+\s+(\S+)\s+(.*)", text, re.DOTALL)
    if match:
        return {
            "level": match.group(1).upper(),
            "message": match.group(3),
            "details": "",
            "request_id": match.group(2),
        }
    level = next((marker for marker in _ERROR_MARKERS if marker in text), "")
    return {"level": level.upper(), "message": text, "details": "", "request_id": ""}


def _is_error(parsed: Mapping[str, Any], raw: str) -> bool:
    if parsed["level"] in ("ERROR", "CRITICAL"):
        return True
    if parsed["level"] in ("INFO", "DEBUG", "WARNING", "WARN"):
        return "Traceback" in raw or "Task timed out" in raw
    return any(marker in raw for marker in _ERROR_MARKERS)


@dataclass
class LogErrors:
    log_group: str | None
    table: pd.DataFrame
    since: datetime | None = None
    message: str = ""

    def markdown(self) -> str:
        if self.message:
            return self.message
        if self.table.empty:
            return f"✅ No errors in `{self.log_group}` since {self.since:%Y-%m-%d %H:%M} UTC."
        return f"⚠️ {len(self.table)} error record(s) in `{self.log_group}` (newest first):"


ERROR_COLUMNS = ["time", "level", "message", "details", "request_id", "stream"]


def recent_errors(
    logs,
    log_group: str,
    *,
    since_hours: float = 24,
    limit: int = 20,
    now: datetime | None = None,
) -> LogErrors:
    """The function's recent ERROR records (messages masked), newest first."""
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=since_hours)
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": int(since.timestamp() * 1000),
        "endTime": int(now.timestamp() * 1000) + 1,
        "filterPattern": ERROR_FILTER_PATTERN,
    }
    try:
        for _page in range(20):  # bounded: a noisy group must not keep the runbook busy
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                raw = event.get("message", "")
                parsed = _parse_log_message(raw)
                if not _is_error(parsed, raw):
                    continue
                rows.append(
                    {
                        "time": pd.Timestamp(event.get("timestamp", 0), unit="ms", tz="UTC"),
                        "level": parsed["level"] or "ERROR",
                        "message": mask_text(parsed["message"])[:300],
                        "details": mask_text(parsed["details"])[:300],
                        "request_id": parsed["request_id"],
                        "stream": event.get("logStreamName", ""),
                    }
                )
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = token
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            text = (
                f"Log group `{log_group}` does not exist: the function has never run, or the "
                "name is wrong (it is the stack output `log_group_name`)."
            )
        else:
            text = f"Cannot read `{log_group}`: {_error_text(error)}"
        return LogErrors(log_group, pd.DataFrame(columns=ERROR_COLUMNS), since, text)
    table = pd.DataFrame(rows, columns=ERROR_COLUMNS)
    if not table.empty:
        table = table.sort_values("time", ascending=False, ignore_index=True).head(limit)
    return LogErrors(log_group, table, since)


def function_errors(config: RunbookConfig, aws: AwsClients | None, **kwargs: Any) -> LogErrors:
    empty = pd.DataFrame(columns=ERROR_COLUMNS)
    if not config.live:
        return LogErrors(config.log_group, empty, message="**Skipped:** " + config.missing()[0])
    if not config.log_group:
        return LogErrors(
            None,
            empty,
            message="**Skipped:** no log group known: set NCW_LOG_GROUP or NCW_FUNCTION_NAME.",
        )
    return recent_errors((aws or AwsClients(config)).logs, config.log_group, **kwargs)


ANSWERS: tuple[dict[str, str], ...] = (
    {
        "answer": "202 invalidating",
        "meaning": "Accepted: one invalidation per distribution, listed in the body.",
        "fix": "Nothing. Section 4 follows the invalidation to Completed.",
    },
    {
        "answer": "200 ignored",
        "meaning": "Authenticated, but not a deploy we act on: another event than "
        "deploy_created, state not 'ready', or a context outside deployContexts.",
        "fix": "Expected for previews and failed builds. If production deploys are ignored, check "
        "the hook's event (Deploy succeeded) and the stack's deployContexts.",
    },
    {
        "answer": "400",
        "meaning": "The body is not a JSON object with a string `id` (not a Netlify Deploy).",
        "fix": "Only Netlify's deploy notifications belong here; check what is calling the URL.",
    },
    {
        "answer": "401",
        "meaning": "Not authenticated: the `token` in the URL is wrong, or the JWS signature is "
        "missing, invalid or made with another secret.",
        "fix": "Re-copy the webhook URL from `pulumi stack output --show-secrets webhook_url` into "
        "the Netlify notification and set its 'JWS secret token' to the stack's "
        "netlifyJwsSecret (section 8 does both).",
    },
    {
        "answer": "403",
        "meaning": "Authenticated, but refused: the deploy's site_id is not the stack's "
        "netlifySiteId, or `dist=` names a distribution this site may not invalidate.",
        "fix": "Use the site's own webhook URL; fix netlifySiteId/distributionIds in the stack "
        "config and `pulumi up`.",
    },
    {
        "answer": "404 (from the ALB)",
        "meaning": "The listener rule did not match: wrong host, path or token query string; the "
        "function never ran.",
        "fix": "Use the exact webhook URL (host = the stack's domain, path = webhookPath).",
    },
    {
        "answer": "405",
        "meaning": "Not a POST.",
        "fix": "Netlify always POSTs; something else is calling the URL.",
    },
    {
        "answer": "413",
        "meaning": "The body is larger than 1 MB (the ALB's Lambda limit).",
        "fix": "Netlify's Deploy objects are far smaller: check what is calling the URL.",
    },
    {
        "answer": "500",
        "meaning": "A bad function setting (the reason names the variable), or an unexpected "
        "error (the reason carries a request id).",
        "fix": "Read section 7's errors for that request id; fix the stack config and `pulumi up`.",
    },
    {
        "answer": "502",
        "meaning": "CloudFront refused permanently (AccessDenied, NoSuchDistribution) for the "
        "named distribution. From the ALB itself (HTML body): the function crashed or timed out.",
        "fix": "Check the distribution id and the function role's cloudfront:CreateInvalidation "
        "permission on that distribution's ARN.",
    },
    {
        "answer": "503",
        "meaning": "CloudFront stayed busy or throttled (e.g. TooManyInvalidationsInProgress) for "
        "the function's whole time budget; the answer carries Retry-After.",
        "fix": "Safe to redeliver from Netlify (same deploy = same caller reference, no double "
        "billing) once the invalidations in progress finish.",
    },
)


def answers_table() -> pd.DataFrame:
    return pd.DataFrame(list(ANSWERS), columns=["answer", "meaning", "fix"])


def explain_answer(status: int, body: Any = None) -> str:
    """One line: what this answer from the webhook means and what to do."""
    key = str(status)
    if status == 200 and isinstance(body, dict) and body.get("status") == "ignored":
        key = "200 ignored"
    elif status == 202:
        key = "202 invalidating"
    elif status == 404:
        key = "404 (from the ALB)"
    for row in ANSWERS:
        if row["answer"] == key:
            return f"**{row['answer']}**: {row['meaning']} *Fix:* {row['fix']}"
    return ""


# --------------------------------------------------------------------------------------------
# 8. Connect Netlify


def netlify_hook_body(config: RunbookConfig) -> dict[str, Any] | None:
    """The body for Netlify's hooks API: the stack's ``netlify_hook`` output, or built alike."""
    if config.netlify_hook:
        return json.loads(json.dumps(config.netlify_hook))
    if not config.webhook_url:
        return None
    data: dict[str, Any] = {"url": config.webhook_url}
    if config.jws_secret:
        data[JWS_SECRET_DATA_KEY] = config.jws_secret
    return {"type": "url", "event": NETLIFY_EVENT, "data": data}


def _same_endpoint(a: str | None, b: str | None) -> bool:
    """Same scheme, host and path: a rotated token updates the hook instead of adding one."""
    if not a or not b:
        return False
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, (pa.hostname or "").lower(), pa.port, pa.path.rstrip("/")) == (
        pb.scheme,
        (pb.hostname or "").lower(),
        pb.port,
        pb.path.rstrip("/"),
    )


@dataclass
class HookSync:
    action: str  # dry-run, skipped, created, updated, failed
    hook_id: str | None = None
    body: dict[str, Any] | None = None  # masked
    message: str = ""

    def markdown(self) -> str:
        lines = [self.message]
        if self.body is not None:
            lines.append(f"\n```json\n{json.dumps(self.body, indent=2, ensure_ascii=False)}\n```")
        return "\n".join(lines)


class NetlifyApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, text: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {mask_text(text)[:300]}")
        self.status = status


def _netlify_call(
    method: str,
    api_url: str,
    path: str,
    token: str,
    body: Mapping[str, Any] | None = None,
    timeout: float = 15,
) -> Any:
    url = api_url.rstrip("/") + path
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) API URL: {api_url}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "netlify-cloudfront-webhook-runbook",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        raise NetlifyApiError(error.code, method, path.split("?")[0], text) from None
    return json.loads(raw) if raw else None


def connect_netlify(
    hook_body: Mapping[str, Any] | None,
    site_id: str | None,
    *,
    api_token: str | None,
    api_url: str = NETLIFY_API_URL,
    dry_run: bool = True,
    timeout: float = 15,
) -> HookSync:
    """Create or update the site's deploy notification; never a duplicate for the same URL.

    ``GET /hooks?site_id=`` -> ``PUT /hooks/{id}`` for a url hook with the same event and the
    same endpoint (scheme, host, path; the token may have rotated), else
    ``POST /hooks?site_id=``.
    """
    shown = mask_hook(hook_body)
    if hook_body is None:
        return HookSync("skipped", message="**Skipped:** no webhook URL known (see section 1).")
    if dry_run or not api_token or not site_id:
        why = []
        if dry_run:
            why.append("`dry_run=True`")
        if not api_token:
            why.append("no NETLIFY_AUTH_TOKEN in the environment")
        if not site_id:
            why.append("no Netlify site id (NCW_NETLIFY_SITE_ID or the stack's netlifySiteId)")
        return HookSync(
            "dry-run",
            body=shown,
            message="Not calling Netlify (" + ", ".join(why) + "). This is the body for "
            "`POST /api/v1/hooks?site_id=...` (or enter it in Site configuration → "
            "Notifications → Deploy notifications → HTTP POST request, event 'Deploy "
            "succeeded', with the URL and the JWS secret token):",
        )
    quoted_site = urllib.parse.quote(site_id, safe="")
    try:
        hooks = _netlify_call(
            "GET", api_url, f"/hooks?site_id={quoted_site}", api_token, None, timeout
        )
        wanted_url = (hook_body.get("data") or {}).get("url")
        existing = next(
            (
                hook
                for hook in hooks or []
                if hook.get("type") == hook_body.get("type", "url")
                and hook.get("event") == hook_body.get("event")
                and _same_endpoint((hook.get("data") or {}).get("url"), wanted_url)
            ),
            None,
        )
        if existing:
            answer = _netlify_call(
                "PUT", api_url, f"/hooks/{existing['id']}", api_token, hook_body, timeout
            )
            hook_id, action = (answer or {}).get("id", existing["id"]), "updated"
        else:
            answer = _netlify_call(
                "POST", api_url, f"/hooks?site_id={quoted_site}", api_token, hook_body, timeout
            )
            hook_id, action = (answer or {}).get("id"), "created"
    except (NetlifyApiError, OSError, ValueError) as error:
        return HookSync("failed", body=shown, message=f"❌ Netlify API: {mask_text(str(error))}")
    return HookSync(
        action,
        hook_id=hook_id,
        body=shown,
        message=f"✅ Deploy notification {action} (hook `{hook_id}`) on site `{site_id}`.",
    )


def connect(
    config: RunbookConfig, *, dry_run: bool = True, environ: Mapping[str, str] | None = None
) -> HookSync:
    env = os.environ if environ is None else environ
    return connect_netlify(
        netlify_hook_body(config),
        config.netlify_site_id,
        api_token=env.get("NETLIFY_AUTH_TOKEN"),
        api_url=env.get("NETLIFY_API_URL") or NETLIFY_API_URL,
        dry_run=dry_run,
    )


# --------------------------------------------------------------------------------------------
# Display and summary


def show(*items: Any) -> None:
    """Notebook output for section results: markdown text, then their tables and charts."""
    from IPython.display import Markdown
    from IPython.display import display as ipython_display

    def display(value: Any) -> None:
        with pd.option_context("display.max_colwidth", 300, "display.width", 200):
            ipython_display(value)

    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            display(Markdown(item))
        elif isinstance(item, pd.DataFrame):
            display(item)
        elif hasattr(item, "savefig"):  # a matplotlib figure: show it once, then let it go
            import matplotlib.pyplot as plt

            display(item)
            plt.close(item)
        elif isinstance(item, list | tuple):
            show(*item)
        elif hasattr(item, "markdown"):
            display(Markdown(item.markdown()))
            table = getattr(item, "table", None)
            if callable(table):
                tables = [table()]
            elif isinstance(table, pd.DataFrame):
                tables = [table]
            else:
                tables = item.tables() if hasattr(item, "tables") else []
            for frame in tables:
                if not frame.empty:
                    display(frame)
        else:
            display(item)


def _plain(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records", date_format="iso"))
    if hasattr(value, "__dataclass_fields__"):
        return {key: _plain(val) for key, val in asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _plain(val) for key, val in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def run_summary(
    *,
    config: RunbookConfig,
    trigger_result: TriggerResult | None = None,
    verify_result: VerifyResult | None = None,
    history_result: HistoryResult | None = None,
    health: list[DistributionHealth] | None = None,
    manual_result: ManualInvalidation | None = None,
    errors: LogErrors | None = None,
    hook: HookSync | None = None,
) -> dict[str, Any]:
    """What the run found, JSON-safe and without secrets (the demo and tests read it)."""
    response = trigger_result.result if trigger_result else None
    return {
        "stack": config.stack,
        "live": config.live,
        "config_source": config.source_summary(),
        "webhook_url": mask_url(config.webhook_url),
        "distribution_id": config.distribution_id,
        "trigger": {
            "sent": bool(trigger_result and trigger_result.sent),
            "deploy_id": trigger_result.deploy_id if trigger_result else None,
            "status": response.status if response else None,
            "accepted": bool(response and response.accepted),
            "body": _plain(response.body) if response else None,
            "error": trigger_result.error if trigger_result else None,
        },
        "verify": _plain(verify_result) if verify_result else None,
        "health": [
            {"distribution_id": h.distribution_id, "flags": h.flags, "error": h.error}
            for h in health or []
        ],
        "history": {
            "rows": len(history_result.table) if history_result else 0,
            "invalidation_ids": list(history_result.table["invalidation_id"])
            if history_result
            else [],
            "contains_verified": bool(
                history_result
                and verify_result
                and history_result.contains(verify_result.invalidation_id)
            ),
            "usage": _plain(history_result.usage) if history_result else None,
        },
        "manual": {
            "dry_run": manual_result.dry_run,
            "created": manual_result.created,
            "invalidation_id": manual_result.invalidation_id,
            "problems": manual_result.problems,
            "skipped": manual_result.skipped,
        }
        if manual_result
        else None,
        "errors": {"count": len(errors.table), "message": errors.message} if errors else None,
        "netlify": {"action": hook.action, "hook_id": hook.hook_id} if hook else None,
    }


def write_summary(path: str | os.PathLike | None, summary: Mapping[str, Any]) -> Path | None:
    if not path:
        return None
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return target


def recap(summary: Mapping[str, Any]) -> str:
    """The run in a few lines, from ``run_summary``."""
    if not summary.get("live"):
        return "**Recap:** nothing was inspected: no stack configured (see section 1)."
    trig, ver = summary["trigger"], summary.get("verify") or {}
    lines = ["**Recap**"]
    if trig["sent"]:
        lines.append(f"- notification for deploy `{trig['deploy_id']}`: answer {trig['status']}")
    elif trig["deploy_id"]:
        lines.append(f"- deploy `{trig['deploy_id']}` notified by the caller")
    if ver.get("skipped"):
        lines.append(f"- verify: skipped ({ver['skipped']})")
    elif ver:
        lines.append(
            f"- invalidation `{ver.get('invalidation_id')}`: {ver.get('status')} "
            f"after {ver.get('elapsed_s', 0):.1f} s"
            + (" (timed out)" if ver.get("timed_out") else "")
        )
    lines.append(
        f"- history: {summary['history']['rows']} invalidation(s)"
        + (", including this one" if summary["history"]["contains_verified"] else "")
    )
    flagged = [h["distribution_id"] for h in summary["health"] if h["flags"] or h["error"]]
    lines.append(f"- health: {'flags on ' + ', '.join(flagged) if flagged else 'no flags'}")
    return "\n".join(lines)
