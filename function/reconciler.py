"""Self-healing: find a publish the webhook never heard of, and hooks Netlify switched off.

Lambda handler: ``function.reconciler.handler``, invoked by a schedule (the event's content is
not read). Each run's story is secrets -> published deploy -> invalidations -> queue -> hooks
-> metrics -> one log line:

1. the Netlify personal access token from the secrets parameter (``netlify_api_token``);
2. ``GET /sites/{site_id}``: the site's ``published_deploy`` and its ``published_at``;
3. once that publish is older than ``GRACE_PERIOD_S`` (a notification still being retried is
   not duplicated), each configured distribution needs an invalidation covering the configured
   paths created at or after ``published_at`` (matched by time, not by deploy id: a rollback
   publishes an old deploy again). For each distribution without one, one message of the
   ingest's contract goes to the queue, unless the queue still holds messages (see "Queued
   once" below);
4. ``GET /hooks?site_id=...``: per event of ``netlify_api.HOOK_EVENTS``, whether a url hook of
   ours (the webhook's host, port and path) is there and enabled;
5. ``PutMetricData``: ``MissedPublishes`` (distributions queued this run), ``UnhealthyHooks``
   (events without an enabled hook of ours; only when the hooks were read) and
   ``NetlifyApiErrors`` (failed Netlify calls this run), dimension ``Stack``.

Queued once. The worker's invalidation appears seconds after a message is queued, or hours
later when CloudFront keeps refusing (the worker retries with backoff). So a later run does not
queue again while the queue holds any message (visible, in flight or delayed): every message in
the site's queue invalidates the configured paths of a distribution after ``published_at`` when
the worker gets to it, and once the queue is empty the invalidation either exists (and covers
the publish) or the message was dead-lettered. The messages of one publish carry one caller
reference (deploy id, the ``reconciler`` marker, ``published_at``, paths), so a duplicate that
slips through the residual windows (two runs at once, SQS's approximate counts) gets the
existing invalidation back from CloudFront instead of a new one.

Never raises: Netlify faults (401, 404, 429, 5xx, timeouts, bad JSON) and AWS faults are logged
and counted, and the next run tries again. A missing or unusable token, like a bad setting, is
logged once per container as an error with outcome ``misconfigured``; such a run publishes no
metric (it measured nothing) and its run line says why. The handler returns the run's summary.

Per container, created at first use and kept: the settings, the token (or why there is none)
and the boto3 clients. The token is never logged, returned or put in a metric.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.config import Config

from . import lambda_logging, netlify_api, webhook_settings
from .aws_calls import (
    AWS_ERRORS,
    Budget,
    call_with_deadline,
    client_config,
    error_code,
    is_transient,
)
from .container import SettingsOnce, cached_client, read_secrets
from .invalidation_message import new_message, utc_now_iso
from .netlify_api import NetlifyApiError, NetlifyClient, PublishedDeploy, Timeouts
from .webhook_settings import ReconcilerSettings, SettingsError

logger = logging.getLogger("reconciler")

# A publish younger than this is left to the notification: Netlify may still be delivering it
# and the worker may still be retrying it.
GRACE_PERIOD_S = 15 * 60
# The message's ``event`` and part of the caller reference's digest: the invalidation came from
# the reconciler, not from a notification. The ingest's reference for the same publish cannot be
# rebuilt here (it hashes the notification's own ``updated_at``), so the marker keeps the two
# apart instead of pretending to match; the worker only logs the field.
RECONCILER_EVENT = "reconciler"

METRIC_NAMESPACE = "NetlifyCloudFrontWebhook"
METRIC_DIMENSION = "Stack"
MISSED_PUBLISHES = "MissedPublishes"
UNHEALTHY_HOOKS = "UnhealthyHooks"
NETLIFY_API_ERRORS = "NetlifyApiErrors"
METRIC_NAMES = (MISSED_PUBLISHES, UNHEALTHY_HOOKS, NETLIFY_API_ERRORS)

# The run line carries this field (true): a log filter finds the runs with
# { $.reconciler_run IS TRUE }.
RUN_FIELD = "reconciler_run"

# The time budget. The function's timeout should be at least 60 s (the program's choice); every
# call gets at most its own deadline and never more than the time left minus what the metrics
# and the run line need, so a slow endpoint skips the rest of a run instead of timing it out.
DEFAULT_RUN_BUDGET_MS = 60_000  # without a Lambda context (a local run)
FINISH_MARGIN_MS = 1000
MIN_CALL_MS = 500
NETLIFY_TIMEOUTS = Timeouts(connect_s=3.0, read_s=5.0, deadline_s=10.0)
SSM_CONNECT_TIMEOUT_S = 2
SSM_READ_TIMEOUT_S = 3
SSM_ATTEMPTS = 2
SSM_DEADLINE_S = 8.0
# ListInvalidations and GetInvalidation only read: botocore may retry them once.
CLOUDFRONT_CONNECT_TIMEOUT_S = 2
CLOUDFRONT_READ_TIMEOUT_S = 5
CLOUDFRONT_ATTEMPTS = 2
CLOUDFRONT_DEADLINE_S = 8.0
# One attempt: a retried SendMessageBatch whose first answer was lost would queue twice.
SQS_CONNECT_TIMEOUT_S = 2
SQS_READ_TIMEOUT_S = 3
SQS_DEADLINE_S = 5.0
CLOUDWATCH_CONNECT_TIMEOUT_S = 2
CLOUDWATCH_READ_TIMEOUT_S = 3
CLOUDWATCH_ATTEMPTS = 2
CLOUDWATCH_DEADLINE_S = 5.0
METRICS_RESERVE_MS = CLOUDWATCH_DEADLINE_S * 1000

# ListInvalidations answers newest first; the pages are read until one reaches an invalidation
# older than the publish. Bounded: a distribution with more invalidations since the publish than
# this, none of them covering the paths, is "unknown" (not queued) for this run.
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 3
MAX_INVALIDATIONS_EXAMINED = 20  # GetInvalidation calls per distribution and run
SQS_BATCH_MAX = 10

# A bearer token goes into an HTTP header: printable ASCII without blanks (Netlify's are
# "nfp_" + letters and digits). Anything else is refused before it reaches http.client, whose
# error for a bad header value would quote it.
_USABLE_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")

# Run outcomes.
OK = "ok"  # nothing missed, every hook healthy, no error
FINDINGS = "findings"  # something was missed, unhealthy or failed: see the fields
MISCONFIGURED = "misconfigured"  # bad settings, or no usable token in the parameter
SECRETS_UNAVAILABLE = "secrets_unavailable"  # SSM failed
OUT_OF_TIME = "out_of_time"  # too little time even to read the secrets
ERROR = "error"  # an unexpected exception

# The publish, as this run found it.
PUBLISH_UNKNOWN = "unknown"  # not read (Netlify failed, or no time)
PUBLISH_NONE = "never_published"  # the site has no published deploy
PUBLISH_IN_GRACE = "in_grace"
PUBLISH_COVERED = "covered"  # every distribution has an invalidation since published_at
PUBLISH_MISSED = "missed"  # some distribution had none: see ``distributions``
PUBLISH_UNDETERMINED = "undetermined"  # none missed, but some could not be checked

# Each distribution, for a publish past its grace period.
COVERED = "covered"
QUEUED = "queued"  # missed; a message was queued this run
DEFERRED = "deferred"  # missed, but the queue holds messages (or could not be read)
QUEUE_FAILED = "queue_failed"  # missed; the queue refused the message
UNKNOWN = "unknown"  # could not be checked (CloudFront failed, too many invalidations, time)

# What ``coverage`` says of a distribution without an invalidation since the publish; it
# becomes QUEUED, DEFERRED or QUEUE_FAILED.
_MISSED = "missed"


def _now() -> datetime:
    """The clock the grace period is measured with."""
    return datetime.now(UTC)


_SSM_CONFIG = client_config(
    connect_s=SSM_CONNECT_TIMEOUT_S, read_s=SSM_READ_TIMEOUT_S, attempts=SSM_ATTEMPTS
)
_CLOUDFRONT_CONFIG = client_config(
    connect_s=CLOUDFRONT_CONNECT_TIMEOUT_S,
    read_s=CLOUDFRONT_READ_TIMEOUT_S,
    attempts=CLOUDFRONT_ATTEMPTS,
)
_SQS_CONFIG = client_config(connect_s=SQS_CONNECT_TIMEOUT_S, read_s=SQS_READ_TIMEOUT_S)
_CLOUDWATCH_CONFIG = client_config(
    connect_s=CLOUDWATCH_CONNECT_TIMEOUT_S,
    read_s=CLOUDWATCH_READ_TIMEOUT_S,
    attempts=CLOUDWATCH_ATTEMPTS,
)


# -- container state ---------------------------------------------------------------------------


@dataclass
class _ContainerState:
    settings: SettingsOnce[ReconcilerSettings] = field(
        default_factory=lambda: SettingsOnce(webhook_settings.load_reconciler_settings, logger)
    )
    # repr=False: an accidental log of the state must not print the token.
    token: str | None = field(default=None, repr=False)
    # Why the parameter gives no usable token (kept: the parameter will not fix itself within
    # this container's life; a changed parameter means a new SECRETS_VERSION, new containers).
    token_problem: str | None = None
    clients: dict[str, Any] = field(default_factory=dict)


_state = _ContainerState()


lambda_logging.configure(logger)


def reset_state(keep_clients: bool = False) -> None:
    """Forget the cached settings, token (or its problem) and clients, as a new container would.

    For tests and the local stack, which change the environment between runs.
    """
    global _state
    _state = _ContainerState(clients=_state.clients if keep_clients else {})
    lambda_logging.configure(logger)


def settings() -> ReconcilerSettings | SettingsError:
    """The settings from the environment, read and validated once per container."""
    return _state.settings.get()


def _client(service: str, config: Config) -> Any:
    return cached_client(_state.clients, service, config, logger)


def ssm_client() -> Any:
    return _client("ssm", _SSM_CONFIG)


def cloudfront_client() -> Any:
    return _client("cloudfront", _CLOUDFRONT_CONFIG)


def sqs_client() -> Any:
    return _client("sqs", _SQS_CONFIG)


def cloudwatch_client() -> Any:
    return _client("cloudwatch", _CLOUDWATCH_CONFIG)


# -- decisions (pure) ---------------------------------------------------------------------------


def normalized_paths(paths: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The configured paths as the ingest and ``caller_reference`` normalize them."""
    return tuple(sorted(set(paths)))


def in_grace(published: datetime, now: datetime) -> bool:
    """Whether the publish is too recent to call missed (a publish "in the future", from clock
    skew, is too recent as well)."""
    return (now - published).total_seconds() < GRACE_PERIOD_S


def path_covers(given: str, wanted: str) -> bool:
    """Whether invalidating ``given`` invalidates ``wanted``: the same path, or a wildcard
    (``*`` is only ever last) whose prefix ``wanted`` starts with (``/*`` covers everything)."""
    if given == wanted:
        return True
    return given.endswith("*") and wanted.startswith(given[:-1])


def covers(given: list[str] | tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    """Whether an invalidation of ``given`` covers every path of ``wanted``."""
    return all(any(path_covers(g, w) for g in given) for w in wanted)


def reconciler_reference(deploy: PublishedDeploy, paths: tuple[str, ...]) -> str:
    """The caller reference of the reconciler's messages for this publish of ``deploy``.

    Deterministic for one publish (deploy id, ``published_at``, paths) and distinct for the next
    publish of the same deploy (a rollback has a new ``published_at``). ``updated_at`` is left
    out on purpose: Netlify may touch the deploy record without publishing it again, and then
    two runs would make two references for one publish.
    """
    return webhook_settings.caller_reference(
        deploy.id, paths, event=RECONCILER_EVENT, published_at=deploy.published_at
    )


def _as_utc(value: object) -> datetime | None:
    """botocore's timestamps are aware; anything else (or naive) is read as UTC."""
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run's budget and findings: what the run line, the metrics and the summary say."""

    budget: Budget
    request_id: str
    outcome: str = OK
    variable: str | None = None
    problem: str | None = None
    site_id: str | None = None
    stack: str | None = None
    deploy: PublishedDeploy | None = None
    publish: str = PUBLISH_UNKNOWN
    caller_reference: str | None = None
    distributions: dict[str, str] = field(default_factory=dict)
    queue_pending: int | None = None
    dead_letters: int | None = None  # read only when the main queue is empty
    hooks: dict[str, str] | None = None
    enabled_hooks: dict[str, int] | None = None
    disabled_hook_ids: list[str] = field(default_factory=list)
    netlify_errors: list[dict[str, Any]] = field(default_factory=list)
    aws_errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # calls not made: too little time left
    metrics_published: bool = False

    def seconds_for(self, cap_s: float, reserve_ms: float = METRICS_RESERVE_MS) -> float | None:
        """The deadline for a call of at most ``cap_s``, keeping ``reserve_ms`` (the metrics'
        share, by default) and the finish margin; None when too little time is left."""
        available_ms = self.budget.remaining_ms() - FINISH_MARGIN_MS - reserve_ms
        if available_ms < MIN_CALL_MS:
            return None
        return min(cap_s, available_ms / 1000)

    @property
    def missed_publishes(self) -> int:
        return sum(1 for state in self.distributions.values() if state == QUEUED)

    @property
    def unhealthy_hooks(self) -> int | None:
        if self.hooks is None:
            return None
        return sum(1 for state in self.hooks.values() if state != netlify_api.HOOK_OK)

    def netlify_error(self, operation: str, error: NetlifyApiError) -> None:
        self.netlify_errors.append({"operation": operation, "error": error.kind})
        logger.warning(
            "Netlify %s failed: %s; the next run tries again",
            operation,
            error.kind,
            extra={
                "request_id": self.request_id,
                "outcome": "netlify_error",
                "operation": operation,
                "error_code": error.kind,
                "status_code": error.status,
            },
        )

    def aws_error(self, operation: str, error: BaseException, **fields: str) -> str:
        code = error_code(error)
        self.aws_errors.append({"operation": operation, "error": code, **fields})
        logger.warning(
            "%s failed: %s",
            operation,
            code,
            extra={
                "request_id": self.request_id,
                "outcome": "aws_error",
                "operation": operation,
                "error_code": code,
                "transient": is_transient(error),
                **fields,
            },
        )
        return code

    def out_of_time(self, step: str) -> None:
        self.skipped.append(step)
        logger.warning(
            "%s skipped: too little time left",
            step,
            extra={"request_id": self.request_id, "outcome": OUT_OF_TIME, "operation": step},
        )

    def summary(self) -> dict[str, Any]:
        """The run's findings as plain JSON values (the handler's answer and the run line)."""
        deploy = self.deploy
        return {
            RUN_FIELD: True,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "variable": self.variable,
            "problem": self.problem,
            "site_id": self.site_id,
            "stack": self.stack,
            "deploy_id": deploy.id[:128] if deploy else None,
            "published_at": deploy.published_at if deploy else None,
            "deploy_context": deploy.context if deploy else None,
            "publish": self.publish,
            "caller_reference": self.caller_reference,
            "distributions": dict(self.distributions),
            "queue_pending": self.queue_pending,
            "dead_letters": self.dead_letters,
            "missed_publishes": self.missed_publishes,
            "hooks": dict(self.hooks) if self.hooks is not None else None,
            "enabled_hooks": dict(self.enabled_hooks) if self.enabled_hooks is not None else None,
            "disabled_hook_ids": list(self.disabled_hook_ids),
            "unhealthy_hooks": self.unhealthy_hooks,
            "netlify_api_errors": len(self.netlify_errors),
            "netlify_errors": [dict(item) for item in self.netlify_errors],
            "aws_errors": [dict(item) for item in self.aws_errors],
            "skipped": list(self.skipped),
            "metrics_published": self.metrics_published,
        }


# -- acting -------------------------------------------------------------------------------------


def api_token(current: ReconcilerSettings, run: Run) -> str | None:
    """The Netlify token from the secrets parameter, fetched once per container and kept.

    None (with the run's outcome set) when there is none: a permanent problem (no such
    parameter, access denied, bad JSON, no ``netlify_api_token``, an unusable token) is kept and
    logged once per container; a transient one (throttling, 5xx, too slow) is logged and
    retried by the next run.
    """
    variable = webhook_settings.ENV_SECRETS_PARAMETER
    if _state.token is not None:
        return _state.token
    if _state.token_problem is not None:
        run.outcome, run.variable, run.problem = MISCONFIGURED, variable, _state.token_problem
        return None
    seconds = run.seconds_for(SSM_DEADLINE_S)
    if seconds is None:
        run.outcome = OUT_OF_TIME
        run.out_of_time("GetParameter")
        return None
    client = ssm_client()
    parameter = current.secrets_parameter
    try:
        secrets = read_secrets(client, parameter, seconds)
    except AWS_ERRORS as error:
        code = error_code(error)
        transient = is_transient(error)
        run.aws_errors.append({"operation": "GetParameter", "error": code})
        run.outcome = SECRETS_UNAVAILABLE if transient else MISCONFIGURED
        run.variable, run.problem = variable, f"the parameter cannot be read ({code})"
        if not transient:
            _state.token_problem = run.problem
        logger.error(
            "cannot read the secrets parameter %s: %s",
            parameter,
            code,
            extra={
                "request_id": run.request_id,
                "outcome": run.outcome,
                "variable": variable,
                "error_code": code,
            },
        )
        return None
    except SettingsError as error:  # parse_secrets never quotes the value
        return _token_problem(run, error.problem)
    token = secrets.netlify_api_token
    if token is None:
        return _token_problem(
            run,
            f"the parameter has no {webhook_settings.SECRETS_NETLIFY_API_TOKEN_KEY!r}: the "
            "reconciler needs a Netlify personal access token",
        )
    if not _USABLE_TOKEN.fullmatch(token):
        return _token_problem(
            run,
            f"the parameter's {webhook_settings.SECRETS_NETLIFY_API_TOKEN_KEY!r} is not a usable "
            "token (printable ASCII without blanks)",
        )
    _state.token = token
    return token


def _token_problem(run: Run, problem: str) -> None:
    """Keep and log (once per container) why the parameter gives no token; never its value."""
    variable = webhook_settings.ENV_SECRETS_PARAMETER
    _state.token_problem = problem
    run.outcome, run.variable, run.problem = MISCONFIGURED, variable, problem
    logger.error(
        "bad secrets parameter (%s): %s",
        variable,
        problem,
        extra={"request_id": run.request_id, "outcome": MISCONFIGURED, "variable": variable},
    )


def read_published_deploy(
    client: NetlifyClient, current: ReconcilerSettings, run: Run
) -> PublishedDeploy | None:
    """The site's published deploy (``run.publish`` says why there is none)."""
    seconds = run.seconds_for(NETLIFY_TIMEOUTS.deadline_s)
    if seconds is None:
        run.out_of_time(netlify_api.GET_SITE)
        return None
    timeouts = Timeouts(NETLIFY_TIMEOUTS.connect_s, NETLIFY_TIMEOUTS.read_s, seconds)
    try:
        site = client.get_json(
            netlify_api.GET_SITE, netlify_api.site_path(current.netlify_site_id), timeouts
        )
        deploy = netlify_api.published_deploy(site)
    except NetlifyApiError as error:
        run.netlify_error(netlify_api.GET_SITE, error)
        return None
    if deploy is None:
        run.publish = PUBLISH_NONE
    return deploy


def coverage(distribution_id: str, published: datetime, paths: tuple[str, ...], run: Run) -> str:
    """Is there an invalidation of the distribution covering ``paths`` created at or after
    ``published``? COVERED, ``_MISSED`` or UNKNOWN (could not tell). Newest first, at most
    MAX_LIST_PAGES pages and MAX_INVALIDATIONS_EXAMINED GetInvalidation calls."""
    client = cloudfront_client()
    marker: str | None = None
    examined = 0
    fields = {"distribution_id": distribution_id}
    for _ in range(MAX_LIST_PAGES):
        seconds = run.seconds_for(CLOUDFRONT_DEADLINE_S)
        if seconds is None:
            run.out_of_time("ListInvalidations")
            return UNKNOWN
        request = {"DistributionId": distribution_id, "MaxItems": str(LIST_PAGE_SIZE)}
        if marker:
            request["Marker"] = marker
        try:
            listing = call_with_deadline(
                "ListInvalidations",
                seconds,
                lambda request=request: client.list_invalidations(**request),
            )
        except AWS_ERRORS as error:
            run.aws_error("ListInvalidations", error, **fields)
            return UNKNOWN
        page = listing.get("InvalidationList") or {}
        summaries = [
            (created, item)
            for item in page.get("Items") or []
            if (created := _as_utc(item.get("CreateTime"))) is not None
        ]
        # Newest first, as CloudFront documents it (sorted again: the order is what the early
        # stop below relies on within a page).
        summaries.sort(key=lambda pair: pair[0], reverse=True)
        reached_older = False
        for created, item in summaries:
            if created < published:
                reached_older = True
                break
            if examined >= MAX_INVALIDATIONS_EXAMINED:
                return UNKNOWN
            examined += 1
            found = _invalidation_paths(client, distribution_id, str(item.get("Id")), run)
            if found is None:
                return UNKNOWN
            if covers(found, paths):
                return COVERED
        marker = page.get("NextMarker")
        if reached_older or not page.get("IsTruncated") or not marker:
            return _MISSED
    return UNKNOWN  # more pages than one run reads


def _invalidation_paths(
    client: Any, distribution_id: str, invalidation_id: str, run: Run
) -> list[str] | None:
    seconds = run.seconds_for(CLOUDFRONT_DEADLINE_S)
    if seconds is None:
        run.out_of_time("GetInvalidation")
        return None
    try:
        answer = call_with_deadline(
            "GetInvalidation",
            seconds,
            lambda: client.get_invalidation(DistributionId=distribution_id, Id=invalidation_id),
        )
    except AWS_ERRORS as error:
        run.aws_error("GetInvalidation", error, distribution_id=distribution_id)
        return None
    batch = (answer.get("Invalidation") or {}).get("InvalidationBatch") or {}
    items = (batch.get("Paths") or {}).get("Items") or []
    return [path for path in items if isinstance(path, str)]


def queue_pending(queue_url: str, run: Run) -> int | None:
    """Messages in the queue (visible, in flight or delayed); None when it cannot be read."""
    seconds = run.seconds_for(SQS_DEADLINE_S)
    if seconds is None:
        run.out_of_time("GetQueueAttributes")
        return None
    client = sqs_client()
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    try:
        answer = call_with_deadline(
            "GetQueueAttributes",
            seconds,
            lambda: client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names),
        )
        attributes = answer.get("Attributes") or {}
        return sum(int(attributes.get(name, 0)) for name in names)
    except AWS_ERRORS as error:
        run.aws_error("GetQueueAttributes", error)
        return None
    except ValueError:  # a count that is not a number: treat the queue as unreadable
        run.aws_errors.append({"operation": "GetQueueAttributes", "error": "BadAnswer"})
        return None


def queue_messages(
    current: ReconcilerSettings, deploy: PublishedDeploy, missed: list[str], run: Run
) -> None:
    """One message per missed distribution (SendMessageBatch, one attempt); marks each QUEUED
    or QUEUE_FAILED in ``run.distributions``."""
    paths = normalized_paths(current.invalidation_paths)
    reference = run.caller_reference or reconciler_reference(deploy, paths)
    received_at = utc_now_iso()
    client = sqs_client()
    for start in range(0, len(missed), SQS_BATCH_MAX):
        chunk = missed[start : start + SQS_BATCH_MAX]
        entries = [
            {
                "Id": f"d{index}",
                "MessageBody": new_message(
                    deploy_id=deploy.id,
                    site_id=deploy.site_id or current.netlify_site_id,
                    event=RECONCILER_EVENT,
                    context=deploy.context,
                    distribution_id=distribution_id,
                    paths=paths,
                    caller_reference=reference,
                    received_at=received_at,
                ).to_body(),
            }
            for index, distribution_id in enumerate(chunk)
        ]
        for distribution_id in chunk:
            run.distributions[distribution_id] = QUEUE_FAILED
        seconds = run.seconds_for(SQS_DEADLINE_S)
        if seconds is None:
            run.out_of_time("SendMessageBatch")
            continue
        try:
            answer = call_with_deadline(
                "SendMessageBatch",
                seconds,
                lambda entries=entries: client.send_message_batch(
                    QueueUrl=current.queue_url, Entries=entries
                ),
            )
        except AWS_ERRORS as error:
            run.aws_error("SendMessageBatch", error)
            continue
        for done in answer.get("Successful") or []:
            index = str(done.get("Id", ""))[1:]
            if index.isdigit() and int(index) < len(chunk):
                run.distributions[chunk[int(index)]] = QUEUED
        for refused in answer.get("Failed") or []:
            run.aws_errors.append(
                {"operation": "SendMessageBatch", "error": str(refused.get("Code") or "Unknown")}
            )
    for distribution_id in missed:
        state = run.distributions[distribution_id]
        logger.log(
            logging.WARNING if state == QUEUED else logging.ERROR,
            "missed publish of deploy %s: distribution %s %s",
            deploy.id[:128],
            distribution_id,
            state,
            extra={
                "request_id": run.request_id,
                "outcome": state,
                "deploy_id": deploy.id[:128],
                "published_at": deploy.published_at,
                "distribution_id": distribution_id,
                "caller_reference": reference,
            },
        )


def check_publish(current: ReconcilerSettings, deploy: PublishedDeploy, run: Run) -> None:
    """Step 3 of the story: which distributions missed this publish; queue those, once."""
    if in_grace(deploy.published, _now()):
        run.publish = PUBLISH_IN_GRACE
        return
    paths = normalized_paths(current.invalidation_paths)
    run.caller_reference = reconciler_reference(deploy, paths)
    missed: list[str] = []
    for distribution_id in current.distribution_ids:
        state = coverage(distribution_id, deploy.published, paths, run)
        if state == _MISSED:
            missed.append(distribution_id)
            state = DEFERRED  # until a message is queued below
        run.distributions[distribution_id] = state
    if missed:
        run.publish = PUBLISH_MISSED
    elif all(state == COVERED for state in run.distributions.values()):
        run.publish = PUBLISH_COVERED
        return
    else:
        run.publish = PUBLISH_UNDETERMINED
        return
    run.queue_pending = queue_pending(current.queue_url, run)
    if run.queue_pending is None or run.queue_pending > 0:
        # A message on its way invalidates after published_at; an unreadable queue might hold
        # one. Either way, queueing now could queue twice: the next run looks again.
        _defer(run, deploy, missed, "the queue", "queue_pending", run.queue_pending)
        return
    if current.dead_letter_queue_url:
        run.dead_letters = queue_pending(current.dead_letter_queue_url, run)
        if run.dead_letters is None or run.dead_letters > 0:
            # A repair queued now would probably end in the dead-letter queue as well (the
            # dead-letters alarm is firing): wait until the operator fixed and redrove them.
            _defer(run, deploy, missed, "the dead-letter queue", "dead_letters", run.dead_letters)
            return
    queue_messages(current, deploy, missed, run)


def _defer(
    run: Run, deploy: PublishedDeploy, missed: list[str], queue: str, field: str, count: int | None
) -> None:
    """Log that the missed distributions wait for a later run, because ``queue`` holds
    ``count`` messages (None: it could not be read)."""
    logger.warning(
        "missed publish of deploy %s: %d distribution(s) deferred, %s holds %s message(s)",
        deploy.id[:128],
        len(missed),
        queue,
        "unknown" if count is None else count,
        extra={
            "request_id": run.request_id,
            "outcome": DEFERRED,
            "deploy_id": deploy.id[:128],
            field: count,
        },
    )


def check_hooks(client: NetlifyClient, current: ReconcilerSettings, run: Run) -> None:
    """Our hooks per event: ok, disabled or missing (``run.hooks`` stays None on failure)."""
    seconds = run.seconds_for(NETLIFY_TIMEOUTS.deadline_s)
    if seconds is None:
        run.out_of_time(netlify_api.LIST_HOOKS)
        return
    timeouts = Timeouts(NETLIFY_TIMEOUTS.connect_s, NETLIFY_TIMEOUTS.read_s, seconds)
    try:
        hooks = client.get_json(
            netlify_api.LIST_HOOKS, "/hooks", timeouts, query={"site_id": current.netlify_site_id}
        )
        health = netlify_api.hook_health(hooks, current.webhook_endpoint)
    except NetlifyApiError as error:
        run.netlify_error(netlify_api.LIST_HOOKS, error)
        return
    run.hooks = dict(health.states)
    run.enabled_hooks = dict(health.enabled)
    run.disabled_hook_ids = list(health.disabled_ids)


def publish_metrics(current: ReconcilerSettings, run: Run) -> None:
    """MissedPublishes and NetlifyApiErrors always, UnhealthyHooks when the hooks were read (an
    unknown count is not a zero: it would clear the alarm)."""
    values = {MISSED_PUBLISHES: run.missed_publishes, NETLIFY_API_ERRORS: len(run.netlify_errors)}
    if run.unhealthy_hooks is not None:
        values[UNHEALTHY_HOOKS] = run.unhealthy_hooks
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": METRIC_DIMENSION, "Value": current.stack_name}],
            "Value": float(value),
            "Unit": "Count",
        }
        for name, value in values.items()
    ]
    seconds = run.seconds_for(CLOUDWATCH_DEADLINE_S, reserve_ms=0)
    if seconds is None:
        run.out_of_time("PutMetricData")
        return
    client = cloudwatch_client()
    try:
        call_with_deadline(
            "PutMetricData",
            seconds,
            lambda: client.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data),
        )
    except AWS_ERRORS as error:
        run.aws_error("PutMetricData", error)
        return
    run.metrics_published = True


def reconcile(run: Run) -> None:
    """settings -> token -> published deploy -> invalidations -> queue -> hooks -> metrics."""
    current = settings()
    if isinstance(current, SettingsError):  # logged once per container by settings()
        run.outcome, run.variable, run.problem = MISCONFIGURED, current.variable, current.problem
        return
    run.site_id, run.stack = current.netlify_site_id, current.stack_name
    token = api_token(current, run)
    if token is None:
        return
    client = NetlifyClient(current.netlify_api_url, token)
    deploy = read_published_deploy(client, current, run)
    if deploy is not None:
        run.deploy = deploy
        check_publish(current, deploy, run)
    check_hooks(client, current, run)
    publish_metrics(current, run)
    healthy = (
        run.publish in (PUBLISH_COVERED, PUBLISH_IN_GRACE, PUBLISH_NONE)
        and run.unhealthy_hooks == 0
        and not run.netlify_errors
        and not run.aws_errors
    )
    run.outcome = OK if healthy else FINDINGS


def _where(error: BaseException) -> str:
    """Where an exception was raised (file:line in function), without its message: a message
    could quote a value the run held."""
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    return " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames[::-1]
    )


def handler(event: object, context: object) -> dict[str, Any]:
    """Lambda entry point for the schedule; never raises. Returns the run's summary."""
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    run = Run(budget=Budget(context, default_ms=DEFAULT_RUN_BUDGET_MS), request_id=request_id)
    try:
        reconcile(run)
    except Exception as error:  # never raise: the schedule's retry would only repeat it
        run.outcome = ERROR
        run.problem = f"unexpected {type(error).__name__}"
        logger.error(
            "unexpected %s at %s",
            type(error).__name__,
            _where(error),
            extra={"request_id": request_id, "outcome": ERROR},
        )
    summary = run.summary()
    # One line per run with every finding (never the token, never a body).
    level = logging.INFO if run.outcome == OK else logging.WARNING
    logger.log(
        level,
        "reconciler run: %s (publish %s, %d queued, %s unhealthy hook(s), %d Netlify error(s))",
        run.outcome,
        run.publish,
        run.missed_publishes,
        "unknown" if run.unhealthy_hooks is None else run.unhealthy_hooks,
        len(run.netlify_errors),
        extra=summary,
    )
    return summary
