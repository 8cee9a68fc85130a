"""An embedded AWS for one stack: a moto server seeded from ``Pulumi.<stack>.yaml``.

``LocalStack.start(stack="dev")`` reads the stack config exactly as the Pulumi program does
(``infra.stack_files`` -> ``infra.settings.parse_site_config``), generates the secrets the
config file cannot hold in clear text, starts a moto server on 127.0.0.1 (free port,
``local.embedded_aws``) and seeds it like the real account the site runs in:

- a CloudFront distribution for each configured id, carrying that id, shaped like the site
  (Netlify as default origin, an S3 origin serving ``/pdf/*``);
- the SSM SecureString the functions read their secrets from;
- the invalidation queue and its dead-letter queue, with the program's attributes (visibility
  timeout, retention, redrive policy after ``MAX_RECEIVE_COUNT`` receives, SSE);
- the functions' CloudWatch log groups, and the alarm topic (SNS);
- the Lambda functions themselves (ingest, worker, reconciler), with the program's runtime,
  handler, memory, timeout, role and environment (``SECRETS_VERSION`` = the parameter's
  version), and the reconciler's EventBridge schedule: what the runbook's health checks read.
  moto never runs them (that needs Docker): the stand-ins below do, in-process.

It then starts the stand-ins for what moto cannot run, each running a function in-process
(``local.lambda_runtime``) with that function's own environment:

- the webhook's endpoint: the ALB's listener and rule (``local.listener``) for
  ``endpoint: alb``, the function URL (``local.function_url_endpoint``) for
  ``endpoint: functionUrl``, both running the ingest (``function/handler.py``);
- the event source mapping (``local.queue_runner``), running the worker (``function/worker.py``)
  on the queue's messages;
- a fake of Netlify's API (``local.netlify_fake``) holding the site, its published deploy and
  the stack's hooks, and the reconciler (``function/reconciler.py``), run on demand by
  ``run_reconciler()`` against that fake. A site with ``netlifySiteId`` always gets a
  reconciler locally, with the fake's token as its ``netlifyApiToken``.

A stack started alone also puts the functions' settings (they agree on every variable they
share) and the local AWS in the process environment. ``stop()`` (or leaving the ``with`` block)
stops everything and restores the environment. ``local.fleet.LocalFleet`` starts several
stacks on one embedded AWS and one Netlify fake instead.

moto keeps one state per process and every start resets it, so only one embedded AWS may run in
a process at a time: a second ``start()`` while one runs raises ``LocalStackAlreadyRunning``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from function import webhook_settings
from infra import endpoint, naming
from infra.environments import (
    function_environment,
    reconciler_environment,
    with_secrets_version,
    worker_environment,
)
from infra.function import (
    ARCHITECTURE,
    FUNCTION_DIR,
    HANDLER,
    MEMORY_MB,
    RUNTIME,
    TIMEOUT_SECONDS,
    lambda_assume_role_policy,
)
from infra.netlify_hook import hook_bodies
from infra.pipeline import (
    DEAD_LETTER_RETENTION_SECONDS,
    QUEUE_RETENTION_SECONDS,
    QUEUE_VISIBILITY_TIMEOUT_SECONDS,
    WORKER_HANDLER,
    WORKER_MEMORY_MB,
    WORKER_TIMEOUT_SECONDS,
    redrive_policy,
)
from infra.reconciler import (
    RECONCILER_HANDLER,
    RECONCILER_MEMORY_MB,
    RECONCILER_TIMEOUT_SECONDS,
    schedule_expression,
)
from infra.rule import WebhookRule
from infra.runbook_env import RUNBOOK_ENV
from infra.settings import (
    NETLIFY_API_TOKEN,
    NETLIFY_JWS_SECRET,
    NETLIFY_SITE_ID,
    PROJECT,
    WEBHOOK_TOKEN,
    SiteSettings,
    parse_site_config,
)
from infra.stack_files import PROJECT_DIR, load_stack_files
from local import function_url
from local.embedded_aws import (
    DEFAULT_REGION,
    FAKE_CREDENTIALS,
    EmbeddedAws,
    LocalStackAlreadyRunning,
)
from local.function_url_endpoint import FunctionUrlEndpoint
from local.lambda_runtime import FunctionRuntime, Handler, LambdaContext, restore_environment
from local.listener import HttpStandIn, LocalListener
from local.netlify_fake import NetlifyFake
from local.queue_runner import QueueRunner

__all__ = [
    "DEFAULT_REGION",
    "FAKE_CREDENTIALS",
    "EnvironmentConflict",
    "LocalStack",
    "LocalStackAlreadyRunning",
    "ResourceNames",
    "merged_environment",
    "resource_names",
]

# The runbook's Netlify API variables (runbook_lib.hooks reads them).
NETLIFY_API_URL_ENV = "NETLIFY_API_URL"
NETLIFY_AUTH_TOKEN_ENV = "NETLIFY_AUTH_TOKEN"  # noqa: S105 (a variable name)
# The fleet file: {stack: the environment that stack exports} (see local.fleet).
FLEET_FILE_ENV = "NCW_FLEET_FILE"
_log = logging.getLogger("local.stack")


@dataclass(frozen=True)
class ResourceNames:
    """Names of the site's AWS resources the runbook looks up, as the Pulumi program names them."""

    function_name: str
    log_group_name: str
    secrets_parameter_name: str
    worker_function_name: str
    worker_log_group_name: str
    queue_name: str
    dead_letter_queue_name: str
    alarm_topic_name: str
    reconciler_function_name: str
    reconciler_log_group_name: str
    reconciler_schedule_name: str


def resource_names(stack: str, domain: str) -> ResourceNames:
    """The functions, their log groups, the queues, the parameter: named by ``infra.naming``."""
    function_name = naming.function_name(stack, domain)
    worker_function_name = naming.worker_function_name(stack, domain)
    reconciler_function_name = naming.reconciler_function_name(stack, domain)
    return ResourceNames(
        function_name=function_name,
        log_group_name=naming.log_group_name(function_name),
        secrets_parameter_name=naming.secrets_parameter_name(stack, domain),
        worker_function_name=worker_function_name,
        worker_log_group_name=naming.log_group_name(worker_function_name),
        queue_name=naming.queue_name(stack, domain),
        dead_letter_queue_name=naming.dead_letter_queue_name(stack, domain),
        alarm_topic_name=naming.alarm_topic_name(stack, domain),
        reconciler_function_name=reconciler_function_name,
        reconciler_log_group_name=naming.log_group_name(reconciler_function_name),
        reconciler_schedule_name=naming.reconciler_schedule_name(stack, domain),
    )


class EnvironmentConflict(ValueError):
    """Two functions that share the process environment need different values for a variable."""


def merged_environment(*environments: dict[str, str]) -> dict[str, str]:
    """One environment holding all of ``environments``; a variable they disagree on raises."""
    merged: dict[str, str] = {}
    for environment in environments:
        for name, value in environment.items():
            if merged.setdefault(name, value) != value:
                raise EnvironmentConflict(
                    f"{name} differs between the functions sharing this process's environment"
                )
    return merged


def site_zone(stack: str, settings: SiteSettings) -> str:
    """The site's DNS zone: the stack's hosted zone, or (a function URL stack has none) a
    stand-in named after the stack, for the seeded distribution's aliases and origins."""
    return settings.hosted_zone or f"{stack}.example.com"


def site_distribution_config(
    settings: SiteSettings, distribution_id: str, index: int, region: str, zone: str
) -> dict[str, Any]:
    """A CloudFront DistributionConfig shaped like the site: Netlify default, S3 for /pdf/*."""
    slug = zone.replace(".", "-")
    aliases = [zone, f"www.{zone}"] if index == 0 else [f"{distribution_id.lower()}.{zone}"]
    netlify_origin, pdf_origin = "netlify", "pdf-bucket"
    return {
        "CallerReference": f"ncw-local-{distribution_id}",
        "Comment": f"{zone} (local copy of {distribution_id})",
        "Enabled": True,
        "Aliases": {"Quantity": len(aliases), "Items": aliases},
        "Origins": {
            "Quantity": 2,
            "Items": [
                {
                    "Id": netlify_origin,
                    "DomainName": f"{slug}.netlify.app",
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "https-only",
                        "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                    },
                },
                {
                    "Id": pdf_origin,
                    "DomainName": f"{slug}-pdf.s3.{region}.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                },
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": netlify_origin,
            "ViewerProtocolPolicy": "redirect-to-https",
            "Compress": True,
            "MinTTL": 0,
        },
        "CacheBehaviors": {
            "Quantity": 1,
            "Items": [
                {
                    "PathPattern": "/pdf/*",
                    "TargetOriginId": pdf_origin,
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "Compress": True,
                    "MinTTL": 0,
                }
            ],
        },
    }


def _give_distribution_id(moto_arn: str, wanted_id: str) -> None:
    """Re-key a distribution moto created under a random id so it carries ``wanted_id``.

    moto always generates ids (``random_id()``); the threaded server runs in this process, so
    its CloudFront backend is reachable and the seeded distribution can take the configured id,
    the one the function's settings and the runbook use.
    """
    from moto.cloudfront.models import cloudfront_backends

    # arn:aws:cloudfront::<account>:distribution/<id>
    prefix, _, generated_id = moto_arn.rpartition("/")
    partition, account_id = prefix.split(":")[1], prefix.split(":")[4]
    backend = cloudfront_backends[account_id][partition]
    if wanted_id in backend.distributions:
        raise RuntimeError(f"distribution {wanted_id} already exists in the local stack")
    dist = backend.distributions.pop(generated_id)
    tags = backend.tagger.list_tags_for_resource(dist.arn).get("Tags", [])
    backend.tagger.delete_all_tags_for_resource(dist.arn)
    dist.distribution_id = dist.id = wanted_id
    dist.arn = f"{prefix}/{wanted_id}"
    backend.distributions[wanted_id] = dist
    # moto keeps an S3 origin's OriginAccessIdentity but does not return S3OriginConfig; give
    # the origin the attribute its serializer looks for, so readers can tell S3 from custom.
    config: Any = dist.distribution_config  # moto's own attribute names, not typed in moto
    for origin in config.Origins["Items"]:
        if not hasattr(origin, "custom_origin_config") and ".s3." in origin.domain_name:
            origin.s3_origin_config = {"OriginAccessIdentity": origin.s3_access_identity}
    if tags:
        backend.tagger.tag_resource(dist.arn, tags)


def _reconciler_handler(event: Any, context: LambdaContext) -> Any:
    # Looked up at each call, so a test that patches ``reconciler.handler`` reaches it.
    from function import reconciler

    return reconciler.handler(event, context)


def _reset_reconciler_state() -> None:
    from function import reconciler

    reset = getattr(reconciler, "reset_state", None)
    if callable(reset):
        reset()


def lambda_variables(name: str, log_group: str, memory_mb: int) -> dict[str, str]:
    """The variables Lambda itself sets in a function's environment."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
    }


def scheduled_event(account_id: str, region: str, rule_name: str) -> dict[str, Any]:
    """The event EventBridge sends a target of a ``rate(...)`` rule ("Scheduled Event")."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"],
        "detail": {},
    }


def role_name(function_name: str) -> str:
    """A function's IAM role name (at most 64 characters; the program lets Pulumi name it)."""
    name = f"{function_name}-role"
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{function_name[:50]}-{digest}-role"


def function_archive(folder: Path = FUNCTION_DIR) -> bytes:
    """The Lambda package as the program ships it: ``function/`` without caches, zipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(folder.parent).as_posix())
    return buffer.getvalue()


def write_fleet_file(folder: Path, stacks: list[LocalStack]) -> Path:
    """``<folder>/fleet.json``: {stack: the environment it exports}, readable by its owner only
    (it holds the local stacks' throwaway secrets)."""
    path = folder / "fleet.json"
    document = {local.stack: local.stack_environment() for local in stacks}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    return path


@dataclass
class LocalStack:
    """A running local stack; use ``LocalStack.start(...)`` and stop it (or use ``with``)."""

    stack: str
    region: str
    settings: SiteSettings
    rule: WebhookRule
    names: ResourceNames
    jws_secret: str
    netlify_api_token: str | None = field(default=None, repr=False)
    aws: EmbeddedAws | None = None
    netlify: NetlifyFake | None = None
    queue_url: str = ""
    queue_arn: str = ""
    dead_letter_queue_url: str = ""
    dead_letter_queue_arn: str = ""
    alarm_topic_arn: str = ""
    secrets_version: int = 0  # the secrets parameter's version (the ingest's SECRETS_VERSION)
    listener: HttpStandIn | None = None
    runner: QueueRunner | None = None
    reconciler: FunctionRuntime | None = None
    # The stack's hooks in the Netlify fake: event -> hook id.
    hook_ids: dict[str, str] = field(default_factory=dict)
    # Distribution ids another stack of the fleet seeded first (shared with it).
    shared_distribution_ids: tuple[str, ...] = ()
    fleet_file: Path | None = None
    _owns_shared: bool = field(default=False, repr=False)
    _fleet_dir: Path | None = field(default=None, repr=False)
    _saved_environ: dict[str, str | None] = field(default_factory=dict, repr=False)

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def prepare(
        cls,
        stack: str = "dev",
        *,
        project_dir: Path = PROJECT_DIR,
        webhook_token: str | None = None,
        jws_secret: str | None = None,
        netlify_api_token: str | None = None,
    ) -> LocalStack:
        """The stack's settings from ``Pulumi.<stack>.yaml``, nothing started yet.

        ``webhook_token`` and ``jws_secret`` default to fresh ``secrets.token_urlsafe`` values
        (the stack file holds them encrypted, if at all). A site with ``netlifySiteId`` gets
        ``netlify_api_token`` (the Netlify fake's) as its ``netlifyApiToken``: a reconciler.
        """
        files = load_stack_files(stack, project_dir)
        values = dict(files.values)
        values[WEBHOOK_TOKEN] = webhook_token or secrets.token_urlsafe(32)
        jws = jws_secret or secrets.token_urlsafe(32)
        values[NETLIFY_JWS_SECRET] = jws
        api_token = None
        if values.get(NETLIFY_SITE_ID) and netlify_api_token:
            values[NETLIFY_API_TOKEN] = api_token = netlify_api_token
        settings = parse_site_config(values)
        return cls(
            stack=stack,
            region=files.provider.get("aws:region", DEFAULT_REGION),
            settings=settings,
            rule=WebhookRule.from_settings(settings),
            names=resource_names(stack, settings.domain),
            jws_secret=jws,
            netlify_api_token=api_token,
        )

    @classmethod
    def start(
        cls,
        stack: str = "dev",
        *,
        project_dir: Path = PROJECT_DIR,
        webhook_token: str | None = None,
        jws_secret: str | None = None,
        multi_value_headers: bool = False,
        invoke: Handler | None = None,
        worker_invoke: Handler | None = None,
        reconciler_invoke: Handler | None = None,
        poll_queue: bool = True,
    ) -> LocalStack:
        """Start moto, the Netlify fake and the stand-ins for ``Pulumi.<stack>.yaml``, alone.

        ``invoke``, ``worker_invoke`` and ``reconciler_invoke`` replace the in-process calls of
        ``handler.handler``, ``worker.handler`` and ``reconciler.handler`` (tests only).
        ``poll_queue`` runs the queue runner in a background thread (``make local``, the demo,
        the runbook's tests); without it the queue moves only when the caller drives
        ``local.runner`` (``poll_once``, ``advance``, ``run_until_idle``), step by step.
        """
        netlify = NetlifyFake()
        local = cls.prepare(
            stack,
            project_dir=project_dir,
            webhook_token=webhook_token,
            jws_secret=jws_secret,
            netlify_api_token=netlify.token,
        )
        local.aws = EmbeddedAws.start(f"stack {stack!r}", local.region)
        local.netlify = netlify
        local._owns_shared = True
        try:
            netlify.start()
            aws = local.aws
            local.start_on(
                aws,
                netlify,
                process_environment=True,
                multi_value_headers=multi_value_headers,
                invoke=invoke,
                worker_invoke=worker_invoke,
                reconciler_invoke=reconciler_invoke,
                poll_queue=poll_queue,
            )
            local._fleet_dir = Path(tempfile.mkdtemp(prefix="ncw-local-"))
            local.fleet_file = write_fleet_file(local._fleet_dir, [local])
        except BaseException:
            local.stop()
            raise
        return local

    def start_on(
        self,
        aws: EmbeddedAws,
        netlify: NetlifyFake,
        *,
        process_environment: bool,
        multi_value_headers: bool = False,
        invoke: Handler | None = None,
        worker_invoke: Handler | None = None,
        reconciler_invoke: Handler | None = None,
        poll_queue: bool = True,
    ) -> None:
        """Seed this stack into ``aws`` and ``netlify`` (running, maybe shared) and start its
        stand-ins. ``process_environment``: also put the local AWS and the functions'
        settings in ``os.environ`` (a stack alone; a fleet's stacks would disagree)."""
        self.aws, self.netlify = aws, netlify
        self._seed()
        if process_environment:  # the functions' settings name the queues just created
            self._apply_environ(self.process_environment())
        if self.settings.uses_function_url:
            self.listener = FunctionUrlEndpoint(
                self, invoke=invoke, environment=self.function_environment()
            ).start()
        else:
            self.listener = LocalListener(
                self,
                multi_value_headers=multi_value_headers,
                invoke=invoke,
                environment=self.function_environment(),
            ).start()
        self._register_functions()
        self.runner = QueueRunner(
            self, invoke=worker_invoke, environment=self.worker_environment()
        ).start(background=poll_queue)
        if self.settings.reconciler_enabled:
            self.reconciler = FunctionRuntime(
                function_name=self.reconciler_function_name,
                log_group_name=self.reconciler_log_group_name,
                region=self.region,
                account_id=self.account_id,
                logs_client=lambda: self.client("logs"),
                handler=reconciler_invoke or _reconciler_handler,
                timeout_s=RECONCILER_TIMEOUT_SECONDS,
                memory_mb=RECONCILER_MEMORY_MB,
                reset=None if reconciler_invoke else _reset_reconciler_state,
                environment=self.reconciler_environment(),
            ).start()
        self._register_hooks()

    def stop(self) -> None:
        """Stop the stand-ins (and what the stack owns), restore the environment. Safe twice."""
        try:
            if self.runner is not None:
                self.runner.request_stop()  # its last long poll ends while the others stop
            try:
                if self.listener is not None:
                    self.listener.stop()
                    self.listener = None
                if self.reconciler is not None:
                    self.reconciler.stop()
                    self.reconciler = None
            finally:
                if self.runner is not None:
                    self.runner.stop()
                    self.runner = None
        finally:
            try:
                # First the variables this stack set, then the embedded AWS its own (it set
                # AWS_ENDPOINT_URL... before this stack saved them).
                self._restore_environ()
            finally:
                if self._owns_shared:
                    self._stop_shared()

    def _stop_shared(self) -> None:
        try:
            if self.netlify is not None:
                self.netlify.stop()
        finally:
            try:
                if self.aws is not None:
                    self.aws.stop()
            finally:
                if self._fleet_dir is not None:
                    shutil.rmtree(self._fleet_dir, ignore_errors=True)
                    self._fleet_dir = None
                    self.fleet_file = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what callers read -----------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self.aws.endpoint_url if self.aws else ""

    @property
    def account_id(self) -> str:
        return self.aws.account_id if self.aws else ""

    @property
    def distribution_ids(self) -> tuple[str, ...]:
        return self.settings.distribution_ids

    @property
    def endpoint_mode(self) -> str:
        """``alb`` or ``functionUrl`` (the stack's ``endpoint``)."""
        return self.settings.endpoint

    @property
    def function_name(self) -> str:
        return self.names.function_name

    @property
    def log_group_name(self) -> str:
        return self.names.log_group_name

    @property
    def secrets_parameter_name(self) -> str:
        return self.names.secrets_parameter_name

    @property
    def worker_function_name(self) -> str:
        return self.names.worker_function_name

    @property
    def worker_log_group_name(self) -> str:
        return self.names.worker_log_group_name

    @property
    def reconciler_function_name(self) -> str:
        return self.names.reconciler_function_name

    @property
    def reconciler_log_group_name(self) -> str:
        return self.names.reconciler_log_group_name

    @property
    def function_url_id(self) -> str:
        """The stand-in function URL's id (``<url-id>.lambda-url.<region>.on.aws``)."""
        return function_url.url_id(self.stack, PROJECT)

    @property
    def webhook_host(self) -> str:
        """The Host a request to the real endpoint carries: the ALB's domain (send it: the
        listener routes by host, as the ALB does), or the function URL's domain."""
        if self.settings.uses_function_url:
            return function_url.url_domain(self.function_url_id, self.region)
        return self.rule.host

    @property
    def listener_url(self) -> str:
        """``http://127.0.0.1:<port>``: the endpoint stand-in (ALB listener or function URL)."""
        return self.listener.base_url if self.listener else ""

    @property
    def webhook_url(self) -> str:
        """``http://127.0.0.1:<port><path>?token=<token>`` (secret: it carries the token)."""
        return endpoint.webhook_url(
            self.listener_url, self.settings.webhook_path, self.settings.webhook_token.reveal()
        )

    @property
    def webhook_endpoint(self) -> str:
        """The webhook URL without its token (the reconciler's ``WEBHOOK_ENDPOINT``)."""
        return endpoint.webhook_endpoint(self.listener_url, self.settings.webhook_path)

    @property
    def target_group_arn(self) -> str:
        digest = hashlib.sha256(f"{PROJECT}:{self.stack}".encode()).hexdigest()[:16]
        name = f"ncw-{self.stack}"[:32]
        return (
            f"arn:aws:elasticloadbalancing:{self.region}:{self.account_id}:"
            f"targetgroup/{name}/{digest}"
        )

    def function_variables(self) -> dict[str, str]:
        """The ingest's variables as the program writes them (``SECRETS_VERSION`` included)."""
        return with_secrets_version(
            function_environment(self.settings, self.secrets_parameter_name, self.queue_url),
            self.secrets_version,
        )

    def worker_variables(self) -> dict[str, str]:
        """The worker's variables as the program writes them."""
        return worker_environment(self.settings, self.dead_letter_queue_url)

    def reconciler_variables(self) -> dict[str, str]:
        """The reconciler's variables as the program writes them, Netlify's API being the
        fake's."""
        variables = with_secrets_version(
            reconciler_environment(
                self.settings,
                stack=self.stack,
                parameter_name=self.secrets_parameter_name,
                queue_url=self.queue_url,
                webhook_endpoint=self.webhook_endpoint,
                dead_letter_queue_url=self.dead_letter_queue_url,
            ),
            self.secrets_version,
        )
        if self.netlify is not None:
            variables[webhook_settings.ENV_NETLIFY_API_URL] = self.netlify.api_url
        return variables

    def function_environment(self) -> dict[str, str]:
        """What the ingest finds in its environment: its settings, a local AWS, Lambda's own."""
        return {
            **self.function_variables(),
            **self.aws_environment(),
            **lambda_variables(self.function_name, self.log_group_name, MEMORY_MB),
        }

    def worker_environment(self) -> dict[str, str]:
        """What the worker finds in its environment: its settings, a local AWS, Lambda's own."""
        return {
            **self.worker_variables(),
            **self.aws_environment(),
            **lambda_variables(
                self.worker_function_name, self.worker_log_group_name, WORKER_MEMORY_MB
            ),
        }

    def reconciler_environment(self) -> dict[str, str]:
        """What the reconciler finds in its environment: its settings, a local AWS, Lambda's."""
        return {
            **self.reconciler_variables(),
            **self.aws_environment(),
            **lambda_variables(
                self.reconciler_function_name,
                self.reconciler_log_group_name,
                RECONCILER_MEMORY_MB,
            ),
        }

    def process_environment(self) -> dict[str, str]:
        """The ingest's and the worker's settings in one (they agree on what they share).

        Lambda's own variables stay out: each function gets its own while it runs.
        """
        lambda_names = set(lambda_variables("", "", 0))
        environments = [
            {name: value for name, value in env.items() if name not in lambda_names}
            for env in (self.function_environment(), self.worker_environment())
        ]
        return merged_environment(*environments)

    def aws_environment(self) -> dict[str, str]:
        if self.aws is None:
            return {}
        return self.aws.environment(self.region)

    def stack_environment(self) -> dict[str, str]:
        """The environment the runbook reads for this stack (secrets included: a local
        throwaway stack), without the fleet file: one entry of that file."""
        reconciler = self.settings.reconciler_enabled
        return {
            **self.aws_environment(),
            RUNBOOK_ENV["stack"]: self.stack,
            RUNBOOK_ENV["endpoint"]: self.endpoint_mode,
            RUNBOOK_ENV["webhook_url"]: self.webhook_url,
            RUNBOOK_ENV["webhook_host"]: self.webhook_host,
            RUNBOOK_ENV["jws_secret"]: self.jws_secret,
            RUNBOOK_ENV["distribution_ids"]: ",".join(self.distribution_ids),
            RUNBOOK_ENV["invalidation_paths"]: ",".join(self.settings.invalidation_paths),
            RUNBOOK_ENV["function_name"]: self.function_name,
            RUNBOOK_ENV["log_group"]: self.log_group_name,
            RUNBOOK_ENV["netlify_site_id"]: self.settings.netlify_site_id or "",
            RUNBOOK_ENV["secrets_parameter"]: self.secrets_parameter_name,
            RUNBOOK_ENV["queue_url"]: self.queue_url,
            RUNBOOK_ENV["dead_letter_queue_url"]: self.dead_letter_queue_url,
            RUNBOOK_ENV["worker_function_name"]: self.worker_function_name,
            RUNBOOK_ENV["worker_log_group"]: self.worker_log_group_name,
            RUNBOOK_ENV["alarm_topic_arn"]: self.alarm_topic_arn,
            RUNBOOK_ENV["region"]: self.region,
            RUNBOOK_ENV["reconciler_function_name"]: (
                self.reconciler_function_name if reconciler else ""
            ),
            RUNBOOK_ENV["reconciler_log_group"]: (
                self.reconciler_log_group_name if reconciler else ""
            ),
            NETLIFY_API_URL_ENV: self.netlify.api_url if self.netlify else "",
            NETLIFY_AUTH_TOKEN_ENV: self.netlify.token if self.netlify else "",
        }

    def environment(self) -> dict[str, str]:
        """The runbook's environment contract: this stack's variables and the fleet file."""
        env = self.stack_environment()
        if self.fleet_file is not None:
            env[FLEET_FILE_ENV] = str(self.fleet_file)
        return env

    def client(self, service: str) -> Any:
        """A boto3 client for the local AWS, in the stack's region."""
        assert self.aws is not None, "start() the stack first"
        return self.aws.client(service, self.region)

    # -- the reconciler --------------------------------------------------------------------

    def run_reconciler(self, event: dict[str, Any] | None = None) -> Any:
        """One run of the reconciler, as its schedule would start it; returns its summary."""
        if self.reconciler is None:
            raise RuntimeError(
                f"stack {self.stack!r} has no reconciler (its config has no netlifySiteId)"
            )
        rule = self.names.reconciler_schedule_name
        return self.reconciler.invoke(event or scheduled_event(self.account_id, self.region, rule))

    # -- internals -------------------------------------------------------------------------

    def _seed(self) -> None:
        cloudfront = self.client("cloudfront")
        existing = {
            item["Id"]
            for item in cloudfront.list_distributions()["DistributionList"].get("Items") or []
        }
        zone = site_zone(self.stack, self.settings)
        shared = []
        for index, dist_id in enumerate(self.distribution_ids):
            if dist_id in existing:  # another stack of the fleet configures it too: one account
                shared.append(dist_id)
                continue
            config = site_distribution_config(self.settings, dist_id, index, self.region, zone)
            created = cloudfront.create_distribution(DistributionConfig=config)
            _give_distribution_id(created["Distribution"]["ARN"], dist_id)
        self.shared_distribution_ids = tuple(shared)

        token = self.settings.webhook_token.reveal()
        self.secrets_version = self.client("ssm").put_parameter(
            Name=self.secrets_parameter_name,
            Description=f"Webhook secrets of {PROJECT} stack {self.stack} (local)",
            Type="SecureString",
            Value=webhook_settings.secrets_value(token, self.jws_secret, self.netlify_api_token),
        )["Version"]

        self._seed_queues()
        tags = naming.site_tags(self.stack, self.settings.domain)
        logs = self.client("logs")
        groups = [self.log_group_name, self.worker_log_group_name]
        if self.settings.reconciler_enabled:
            groups.append(self.reconciler_log_group_name)
        for group in groups:
            logs.create_log_group(logGroupName=group, tags=tags)
            logs.put_retention_policy(
                logGroupName=group, retentionInDays=self.settings.log_retention_days
            )
        # The stack's own topic, also when the config names a shared one: that ARN belongs to
        # a real account.
        self.alarm_topic_arn = self.client("sns").create_topic(
            Name=self.names.alarm_topic_name,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )["TopicArn"]

    def _seed_queues(self) -> None:
        """The two queues exactly as ``infra.pipeline`` declares them."""
        sqs = self.client("sqs")
        tags = naming.site_tags(self.stack, self.settings.domain)
        self.dead_letter_queue_url = sqs.create_queue(
            QueueName=self.names.dead_letter_queue_name,
            Attributes={
                "MessageRetentionPeriod": str(DEAD_LETTER_RETENTION_SECONDS),
                "SqsManagedSseEnabled": "true",
            },
            tags=tags,
        )["QueueUrl"]
        self.dead_letter_queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.dead_letter_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.queue_url = sqs.create_queue(
            QueueName=self.names.queue_name,
            Attributes={
                "VisibilityTimeout": str(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
                "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
                "RedrivePolicy": json.dumps(redrive_policy(self.dead_letter_queue_arn)),
                "SqsManagedSseEnabled": "true",
            },
            tags=tags,
        )["QueueUrl"]
        self.queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

    def _register_functions(self) -> None:
        """The functions in moto's Lambda as the program declares them (moto never runs them:
        the stand-ins do), and the reconciler's schedule."""
        code = function_archive()
        tags = naming.site_tags(self.stack, self.settings.domain)
        iam, lambda_ = self.client("iam"), self.client("lambda")
        functions = [
            (self.function_name, HANDLER, TIMEOUT_SECONDS, MEMORY_MB, self.function_variables()),
            (
                self.worker_function_name,
                WORKER_HANDLER,
                WORKER_TIMEOUT_SECONDS,
                WORKER_MEMORY_MB,
                self.worker_variables(),
            ),
        ]
        if self.settings.reconciler_enabled:
            functions.append(
                (
                    self.reconciler_function_name,
                    RECONCILER_HANDLER,
                    RECONCILER_TIMEOUT_SECONDS,
                    RECONCILER_MEMORY_MB,
                    self.reconciler_variables(),
                )
            )
        arns = {}
        for name, handler, timeout_s, memory_mb, variables in functions:
            role = iam.create_role(
                RoleName=role_name(name),
                AssumeRolePolicyDocument=json.dumps(lambda_assume_role_policy()),
                Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
            )["Role"]["Arn"]
            arns[name] = lambda_.create_function(
                FunctionName=name,
                Runtime=RUNTIME,
                Architectures=[ARCHITECTURE],
                Role=role,
                Handler=handler,
                Code={"ZipFile": code},
                Timeout=timeout_s,
                MemorySize=memory_mb,
                Environment={"Variables": variables},
                Tags=tags,
            )["FunctionArn"]
        if self.settings.reconciler_enabled:
            events = self.client("events")
            rule = self.names.reconciler_schedule_name
            events.put_rule(
                Name=rule,
                ScheduleExpression=schedule_expression(self.settings.reconcile_minutes),
                State="ENABLED",
            )
            events.put_targets(
                Rule=rule,
                Targets=[{"Id": "reconciler", "Arn": arns[self.reconciler_function_name]}],
            )

    def _register_hooks(self) -> None:
        """The site in the Netlify fake, and the stack's hooks on it, enabled: as after the
        runbook's "Connect Netlify" (one hook per event, the stack's webhook URL)."""
        site_id = self.settings.netlify_site_id
        if self.netlify is None or not site_id:
            return
        self.netlify.add_site(site_id, f"ncw-local-{self.stack}")
        if not self.settings.uses_function_url and self.listener is not None:
            # The ALB stand-in routes by Host: a delivery to it names the webhook's domain.
            self.netlify.route_host(f"127.0.0.1:{self.listener.port}", self.rule.host)
        for body in hook_bodies(self.webhook_url, self.jws_secret):
            hook = self.netlify.add_hook(site_id, body)
            self.hook_ids[str(body["event"])] = hook["id"]

    def _apply_environ(self, values: dict[str, str]) -> None:
        for name in values:
            if name not in self._saved_environ:
                self._saved_environ[name] = os.environ.get(name)
        os.environ.update(values)

    def _restore_environ(self) -> None:
        saved, self._saved_environ = self._saved_environ, {}
        restore_environment(saved)
