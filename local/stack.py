"""An embedded AWS for one stack: a moto server seeded from ``Pulumi.<stack>.yaml``.

``LocalStack.start(stack="dev")`` reads the stack config exactly as the Pulumi program does
(``infra.stack_files`` -> ``infra.settings.parse_site_config``), generates the two secrets the
config file cannot hold in clear text, starts a moto server on 127.0.0.1 (free port) and seeds it
like the real account the site runs in:

- a CloudFront distribution for each configured id, carrying that id, shaped like the site
  (Netlify as default origin, an S3 origin serving ``/pdf/*``);
- the SSM SecureString the ingest reads its secrets from;
- the invalidation queue and its dead-letter queue, with the program's attributes (visibility
  timeout, retention, redrive policy after ``MAX_RECEIVE_COUNT`` receives, SSE);
- the ingest's and the worker's CloudWatch log groups, and the alarm topic (SNS).

It then starts the local listener (``local.listener``), the ALB stand-in that runs the ingest
(``function/handler.py``) in-process, and the queue runner (``local.queue_runner``), the event
source mapping stand-in that runs the worker (``function/worker.py``) on the queue's messages.
The process environment holds both functions' settings (their shared ``DISTRIBUTION_IDS`` is
the same value). ``stop()`` (or leaving the ``with`` block) stops everything and restores the
environment.

moto keeps one state per process and every start resets it, so only one local stack may run in
a process at a time: a second ``start()`` while one runs raises ``LocalStackAlreadyRunning``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from function import webhook_settings
from infra import naming
from infra.function import MEMORY_MB, function_environment, worker_environment
from infra.pipeline import (
    DEAD_LETTER_RETENTION_SECONDS,
    QUEUE_RETENTION_SECONDS,
    QUEUE_VISIBILITY_TIMEOUT_SECONDS,
    redrive_policy,
)
from infra.rule import TOKEN_QUERY_KEY, WebhookRule
from infra.runbook_env import RUNBOOK_ENV
from infra.settings import (
    NETLIFY_JWS_SECRET,
    PROJECT,
    WEBHOOK_TOKEN,
    SiteSettings,
    parse_site_config,
)
from infra.stack_files import PROJECT_DIR, load_stack_files
from local.listener import LocalListener
from local.queue_runner import QueueRunner

DEFAULT_REGION = "us-east-1"
# Fake credentials: the local stack never talks to a real AWS account.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Variables that could point boto3 at a real account; removed while the stack runs.
_REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_log = logging.getLogger("local.stack")

# moto's backends are per process and each start() resets them: one running stack per process.
_running_lock = threading.Lock()
_running: LocalStack | None = None


class LocalStackAlreadyRunning(RuntimeError):
    """``LocalStack.start()`` while another local stack runs in this process."""


def _claim(local: LocalStack) -> None:
    global _running
    with _running_lock:
        if _running is not None:
            raise LocalStackAlreadyRunning(
                "a local stack is already running in this process "
                f"(stack {_running.stack!r}, moto at {_running.endpoint_url or 'starting'}); "
                "moto keeps one state per process, so stop it before starting another"
            )
        _running = local


def _release(local: LocalStack) -> None:
    global _running
    with _running_lock:
        if _running is local:
            _running = None


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


def resource_names(stack: str, domain: str) -> ResourceNames:
    """The functions, their log groups, the queues, the parameter: named by ``infra.naming``."""
    function_name = naming.function_name(stack, domain)
    worker_function_name = naming.worker_function_name(stack, domain)
    return ResourceNames(
        function_name=function_name,
        log_group_name=naming.log_group_name(function_name),
        secrets_parameter_name=naming.secrets_parameter_name(stack, domain),
        worker_function_name=worker_function_name,
        worker_log_group_name=naming.log_group_name(worker_function_name),
        queue_name=naming.queue_name(stack, domain),
        dead_letter_queue_name=naming.dead_letter_queue_name(stack, domain),
        alarm_topic_name=naming.alarm_topic_name(stack, domain),
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


def site_distribution_config(
    settings: SiteSettings, distribution_id: str, index: int, region: str
) -> dict[str, Any]:
    """A CloudFront DistributionConfig shaped like the site: Netlify default, S3 for /pdf/*."""
    zone = settings.hosted_zone
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


@dataclass
class LocalStack:
    """A running local stack; use ``LocalStack.start(...)`` and stop it (or use ``with``)."""

    stack: str
    region: str
    settings: SiteSettings
    rule: WebhookRule
    names: ResourceNames
    jws_secret: str
    endpoint_url: str = ""
    account_id: str = ""
    queue_url: str = ""
    queue_arn: str = ""
    dead_letter_queue_url: str = ""
    dead_letter_queue_arn: str = ""
    alarm_topic_arn: str = ""
    listener: Any = None
    runner: QueueRunner | None = None
    _server: ThreadedMotoServer | None = field(default=None, repr=False)
    _saved_environ: dict[str, str | None] = field(default_factory=dict, repr=False)
    _werkzeug_level: int | None = field(default=None, repr=False)

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        stack: str = "dev",
        *,
        project_dir: Path = PROJECT_DIR,
        webhook_token: str | None = None,
        jws_secret: str | None = None,
        multi_value_headers: bool = False,
        invoke: Any = None,
        worker_invoke: Any = None,
        poll_queue: bool = True,
    ) -> LocalStack:
        """Start moto, the listener and the queue runner for ``Pulumi.<stack>.yaml``.

        ``webhook_token`` and ``jws_secret`` default to fresh ``secrets.token_urlsafe`` values
        (the stack file holds them encrypted, if at all). ``invoke`` and ``worker_invoke``
        replace the in-process calls of ``handler.handler`` and ``worker.handler`` (tests only).
        ``poll_queue`` runs the queue runner in a background thread (``make local``, the demo,
        the runbook's tests); without it the queue moves only when the caller drives
        ``local.runner`` (``poll_once``, ``advance``, ``run_until_idle``), step by step.
        """
        files = load_stack_files(stack, project_dir)
        values = dict(files.values)
        values[WEBHOOK_TOKEN] = webhook_token or secrets.token_urlsafe(32)
        jws = jws_secret or secrets.token_urlsafe(32)
        values[NETLIFY_JWS_SECRET] = jws
        settings = parse_site_config(values)
        local = cls(
            stack=stack,
            region=files.provider.get("aws:region", DEFAULT_REGION),
            settings=settings,
            rule=WebhookRule.from_settings(settings),
            names=resource_names(stack, settings.domain),
            jws_secret=jws,
        )
        _claim(local)
        try:
            local._start(
                multi_value_headers=multi_value_headers,
                invoke=invoke,
                worker_invoke=worker_invoke,
                poll_queue=poll_queue,
            )
        except BaseException:
            local.stop()
            raise
        return local

    def _start(
        self, *, multi_value_headers: bool, invoke: Any, worker_invoke: Any, poll_queue: bool
    ) -> None:
        werkzeug = logging.getLogger("werkzeug")  # moto's server logs every request at INFO
        self._werkzeug_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._reset_moto()  # moto's backends are per process: start from a clean account
        # The local AWS first (and no real profile), then the functions' settings, which name
        # the queues moto creates.
        self._apply_environ(self.aws_environment())
        self._seed()
        self._apply_environ(self.process_environment())
        self.listener = LocalListener(
            self, multi_value_headers=multi_value_headers, invoke=invoke
        ).start()
        self.runner = QueueRunner(self, invoke=worker_invoke).start(background=poll_queue)

    def stop(self) -> None:
        """Stop the runner, the listener and moto, restore the environment. Safe twice."""
        try:
            if self.runner is not None:
                self.runner.request_stop()  # its last long poll ends while the listener stops
            try:
                if self.listener is not None:
                    self.listener.stop()
                    self.listener = None
            finally:
                if self.runner is not None:
                    self.runner.stop()
                    self.runner = None
        finally:
            try:
                self._stop_server()
            finally:
                self._restore_environ()
                if self._werkzeug_level is not None:
                    logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
                    self._werkzeug_level = None
                _release(self)

    def _stop_server(self) -> None:
        """Empty moto's state for whoever comes next, then stop the server whatever happened."""
        if self._server is None:
            return
        try:
            self._reset_moto()
        except Exception as error:  # a failed reset must not leave the server and port behind
            _log.warning("could not reset moto at %s: %s", self.endpoint_url, error)
        finally:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what callers read -----------------------------------------------------------------

    @property
    def distribution_ids(self) -> tuple[str, ...]:
        return self.settings.distribution_ids

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
    def webhook_host(self) -> str:
        """The webhook's domain: send it as the Host header, as Netlify reaching the ALB would."""
        return self.rule.host

    @property
    def listener_url(self) -> str:
        return self.listener.base_url if self.listener else ""

    @property
    def webhook_url(self) -> str:
        """``http://127.0.0.1:<port><path>?token=<token>`` (secret: it carries the token)."""
        return f"{self.listener_url}{self.rule.path}?{TOKEN_QUERY_KEY}={self.rule.token.reveal()}"

    @property
    def target_group_arn(self) -> str:
        digest = hashlib.sha256(f"{PROJECT}:{self.stack}".encode()).hexdigest()[:16]
        name = f"ncw-{self.stack}"[:32]
        return (
            f"arn:aws:elasticloadbalancing:{self.region}:{self.account_id}:"
            f"targetgroup/{name}/{digest}"
        )

    def function_environment(self) -> dict[str, str]:
        """What the ingest finds in its environment: its settings and a local AWS."""
        env = function_environment(self.settings, self.secrets_parameter_name, self.queue_url)
        env.update(self.aws_environment())
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
                "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
                "AWS_LAMBDA_LOG_FORMAT": "JSON",
            }
        )
        return env

    def worker_environment(self) -> dict[str, str]:
        """What the worker finds in its environment: its settings and a local AWS.

        Lambda's own variables (``AWS_LAMBDA_FUNCTION_NAME``...) stay the ingest's in the shared
        process environment; the worker's context carries its own name and log group.
        """
        return {
            **worker_environment(self.settings, self.dead_letter_queue_url),
            **self.aws_environment(),
        }

    def process_environment(self) -> dict[str, str]:
        """Both functions' environments in one (they agree on every variable they share)."""
        return merged_environment(self.function_environment(), self.worker_environment())

    def aws_environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **FAKE_CREDENTIALS,
        }

    def environment(self) -> dict[str, str]:
        """The runbook's environment contract (secrets included: a local throwaway stack)."""
        return {
            **self.aws_environment(),
            RUNBOOK_ENV["stack"]: self.stack,
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
        }

    def client(self, service: str):
        """A boto3 client for the local AWS (explicit endpoint and fake credentials)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    # -- internals -------------------------------------------------------------------------

    def _reset_moto(self) -> None:
        url = f"{self.endpoint_url}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 (local http URL)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local)
            response.read()

    def _seed(self) -> None:
        self.account_id = self.client("sts").get_caller_identity()["Account"]
        cloudfront = self.client("cloudfront")
        for index, dist_id in enumerate(self.distribution_ids):
            config = site_distribution_config(self.settings, dist_id, index, self.region)
            created = cloudfront.create_distribution(DistributionConfig=config)
            _give_distribution_id(created["Distribution"]["ARN"], dist_id)

        token = self.settings.webhook_token.reveal()
        self.client("ssm").put_parameter(
            Name=self.secrets_parameter_name,
            Description=f"Webhook secrets of {PROJECT} stack {self.stack} (local)",
            Type="SecureString",
            Value=webhook_settings.secrets_value(token, self.jws_secret),
        )

        self._seed_queues()
        tags = naming.site_tags(self.stack, self.settings.domain)
        logs = self.client("logs")
        for group in (self.log_group_name, self.worker_log_group_name):
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

    def _apply_environ(self, values: dict[str, str]) -> None:
        for name in (*values, *_REAL_AWS_VARIABLES):
            if name not in self._saved_environ:
                self._saved_environ[name] = os.environ.get(name)
        for name in _REAL_AWS_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(values)

    def _restore_environ(self) -> None:
        saved, self._saved_environ = self._saved_environ, {}
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
