"""Netlify deploy notification (via an Application Load Balancer) -> the invalidation queue.

Lambda handler: ``function.handler.handler`` (the ingest). Each request's story is parse ->
authenticate -> decide -> queue -> respond; the decisions are pure functions of the request, the
settings and the secrets, and every answer (refusals included) is an ``Answer`` value turned into
the ALB's response shape by ``webhook_alb.respond``. The handler never raises.

It does not call CloudFront: an accepted deploy becomes one SQS message per distribution
(``function.invalidation_message``), and the worker (``function.worker``) invalidates, retrying
for hours. So the answer comes in milliseconds and a busy CloudFront never fails a notification.

Per container, created at first use and kept: the settings (environment, validated once), the
secrets (one SSM SecureString, decrypted once) and the boto3 clients. Nothing is created at
import, so a cold start costs little more than importing boto3.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from . import lambda_logging, webhook_settings
from .aws_calls import (
    AWS_ERRORS,
    Budget,
    call_with_deadline,
    client_config,
    error_code,
    is_transient,
)
from .container import SettingsOnce, cached_client, read_secrets
from .function_url import is_function_url_event, parse_url_event, respond_url
from .invalidation_message import InvalidationMessage, bounded, new_message, utc_now_iso
from .webhook_alb import MAX_BODY_BYTES, AlbRequest, Answer, parse_event, respond
from .webhook_jws import signature_problem
from .webhook_settings import FunctionSecrets, FunctionSettings, SettingsError

logger = logging.getLogger("webhook")

NETLIFY_EVENT_HEADER = "X-Netlify-Event"
SIGNATURE_HEADER = "X-Webhook-Signature"
# A new production deploy and a deploy published by hand or rolled back to: one Netlify hook
# each (infra.netlify_hook registers both).
ACTED_ON_EVENTS = webhook_settings.PUBLISH_EVENTS
READY_STATE = "ready"

# The time budget. The function runs with a 30 s timeout (infra/function.py); if Lambda stops it
# mid-call, the ALB answers a bare 502 instead of our 503 with Retry-After. botocore's timeouts
# bound each socket read, not a whole call (an endpoint that trickles its answer byte by byte
# outlasts them), so every AWS call also runs under a hard deadline (``call_with_deadline``)
# that leaves ANSWER_MARGIN_MS to log and answer.
ANSWER_MARGIN_MS = 1000
# SQS normally answers SendMessageBatch in milliseconds; one attempt may take this long at most.
SQS_CONNECT_TIMEOUT_S = 1
SQS_READ_TIMEOUT_S = 2
SQS_ATTEMPT_DEADLINE_S = 4.0
# The secrets are fetched once per container, before the first send. botocore retries once
# itself; the whole fetch may take at most SSM_DEADLINE_S, so a send always fits after it.
SSM_CONNECT_TIMEOUT_S = 2
SSM_READ_TIMEOUT_S = 3
SSM_ATTEMPTS = 2
SSM_DEADLINE_S = 12.0
# An attempt is started only while this much time remains: its deadline plus the margin.
RESERVE_MS = SQS_ATTEMPT_DEADLINE_S * 1000 + ANSWER_MARGIN_MS
# SendMessageBatch takes at most 10 entries.
SQS_BATCH_MAX = 10
# Backoff between rounds of SendMessageBatch retries.
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0
# What the 503 suggests to the sender: SQS throttling and 5xx clear in seconds.
RETRY_AFTER_TRANSIENT_S = 30

# Our retry loop owns the timing (it knows the Lambda deadline), so botocore makes one attempt.
_SQS_CONFIG = client_config(connect_s=SQS_CONNECT_TIMEOUT_S, read_s=SQS_READ_TIMEOUT_S)
# The secrets are read once per container; botocore's own retry is enough there.
_SSM_CONFIG = client_config(
    connect_s=SSM_CONNECT_TIMEOUT_S, read_s=SSM_READ_TIMEOUT_S, attempts=SSM_ATTEMPTS
)

# Seams for tests: the backoff's sleep and jitter.
_sleep = time.sleep
_jitter = random.random


# -- container state ---------------------------------------------------------------------------


@dataclass
class _ContainerState:
    settings: SettingsOnce[FunctionSettings] = field(
        default_factory=lambda: SettingsOnce(webhook_settings.load_settings, logger)
    )
    secrets: FunctionSecrets | None = None
    # A permanent failure to read the secrets (missing, malformed, access denied), kept like
    # a bad setting: the parameter will not fix itself within this container's life.
    secrets_error: Answer | None = None
    clients: dict = field(default_factory=dict)


_state = _ContainerState()


lambda_logging.configure(logger)


def reset_state(keep_clients: bool = False) -> None:
    """Forget the cached settings, secrets (or their failure) and clients, as a new container would.

    For tests and the local stack, which change the environment between runs. Tests that only
    change settings may keep the boto3 clients, which cost ~0.1 s each to create.
    """
    global _state
    clients = _state.clients if keep_clients else {}
    _state = _ContainerState(clients=clients)
    lambda_logging.configure(logger)


def settings() -> FunctionSettings | SettingsError:
    """The settings from the environment, read and validated once per container."""
    return _state.settings.get()


def _client(service: str, config: Config) -> Any:
    return cached_client(_state.clients, service, config, logger)


def sqs_client():
    return _client("sqs", _SQS_CONFIG)


def ssm_client():
    return _client("ssm", _SSM_CONFIG)


def _secrets(parameter: str, budget: Budget) -> FunctionSecrets | Answer:
    """The token and JWS secret, fetched with decryption on first use and kept.

    A permanent failure is kept too, so it is logged once and answered 500 without asking SSM
    again; a transient one (throttling, 5xx, connection, too slow) is answered 503 and retried
    next time.
    """
    if _state.secrets is not None:
        return _state.secrets
    if _state.secrets_error is not None:
        return _state.secrets_error
    variable = webhook_settings.ENV_SECRETS_PARAMETER
    try:
        deadline_s = min(SSM_DEADLINE_S, (budget.remaining_ms() - RESERVE_MS) / 1000)
        secrets = read_secrets(ssm_client(), parameter, deadline_s)
    except AWS_ERRORS as error:
        code = error_code(error)
        logger.error(
            "cannot read the secrets parameter %s: %s",
            parameter,
            code,
            extra={"outcome": "secrets_unavailable", "error_code": code},
        )
        if is_transient(error):
            return Answer(
                503,
                "retry_later",
                f"the secrets parameter named by {variable} is unavailable ({code})",
                headers={"Retry-After": str(RETRY_AFTER_TRANSIENT_S)},
            )
        _state.secrets_error = Answer(
            500,
            "error",
            f"{variable}: the parameter cannot be read ({code})",
            {"variable": variable},
        )
        return _state.secrets_error
    except SettingsError as error:
        logger.error(
            "bad secrets parameter %s: %s",
            parameter,
            error.problem,
            extra={"outcome": "misconfigured", "variable": variable},
        )
        _state.secrets_error = Answer(500, "error", str(error), {"variable": variable})
        return _state.secrets_error
    _state.secrets = secrets
    return secrets


# -- decisions (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deploy:
    """The fields of Netlify's Deploy object that the decisions read."""

    id: str
    site_id: str | None
    state: str | None
    context: str | None
    published_at: str | None = None
    updated_at: str | None = None


def _text(value: object) -> str | None:
    """A string field of the body, bounded: answers and logs echo it, and none is long."""
    return bounded(value) if isinstance(value, str) else None


def check_path(request: AlbRequest, settings: FunctionSettings) -> Answer | None:
    """404 for a function URL request to another path than WEBHOOK_PATH (no ALB rule in front
    routed it); ALB requests carry no path here: the rule matched it already."""
    if request.path is None or settings.webhook_path is None:
        return None
    if request.path == settings.webhook_path:
        return None
    return Answer(404, "not_found", "no webhook at this path")


def check_method(request: AlbRequest) -> Answer | None:
    if request.method == "POST":
        return None
    return Answer(405, "rejected", "only POST is accepted", headers={"Allow": "POST"})


def authenticate(request: AlbRequest, secrets: FunctionSecrets, now: float) -> Answer | None:
    """401 unless the token matches exactly and, when configured, the JWS holds.

    The ALB rule matched the token case-insensitively, so this is the real check; compared in
    constant time, as bytes (the decoded query value need not be ASCII or even UTF-8).
    """
    given = request.query_bytes(webhook_settings.TOKEN_QUERY_PARAMETER) or b""
    # Digests first, so the comparison takes the same time whatever the lengths.
    given_digest = hashlib.sha256(given).digest()
    expected_digest = hashlib.sha256(secrets.token.encode("utf-8")).digest()
    if not hmac.compare_digest(given_digest, expected_digest):
        return Answer(401, "unauthorized", "missing or wrong token")
    if secrets.jws_secret is None:
        return None
    if request.body is None:
        problem = "the body could not be decoded"
    else:
        problem = signature_problem(
            request.header(SIGNATURE_HEADER), secrets.jws_secret, request.body, now
        )
    if problem:
        return Answer(401, "unauthorized", f"invalid {SIGNATURE_HEADER}: {problem}")
    return None


def parse_deploy(body: bytes | None) -> Deploy | Answer:
    """Netlify's Deploy object from the body: 413 if too large, 400 if it is not one."""
    if body is not None and len(body) > MAX_BODY_BYTES:
        return Answer(413, "rejected", f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body) if body is not None else None
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        return Answer(400, "rejected", "the body is not a JSON object")
    deploy_id = document.get("id")
    if not isinstance(deploy_id, str) or not deploy_id:
        return Answer(400, "rejected", "the body has no deploy id (a string 'id')")
    return Deploy(
        id=deploy_id,
        site_id=_text(document.get("site_id")),
        state=_text(document.get("state")),
        context=_text(document.get("context")),
        published_at=_text(document.get("published_at")),
        updated_at=_text(document.get("updated_at")),
    )


def judge_deploy(
    deploy: Deploy, event_name: str | None, settings: FunctionSettings
) -> Answer | None:
    """200 "ignored" for deploys we do not act on, 403 for another site's; None to act."""
    if event_name is not None and event_name.strip() not in ACTED_ON_EVENTS:
        return Answer(
            200,
            "ignored",
            f"the event {event_name.strip()[:64]!r} is not one of {', '.join(ACTED_ON_EVENTS)}",
        )
    if deploy.state != READY_STATE:
        return Answer(200, "ignored", f"the deploy's state {deploy.state!r} is not 'ready'")
    if deploy.context not in settings.deploy_contexts:
        return Answer(
            200,
            "ignored",
            f"the deploy context {deploy.context!r} is not one of "
            f"{', '.join(settings.deploy_contexts)}",
        )
    if settings.netlify_site_id is not None and deploy.site_id != settings.netlify_site_id:
        return Answer(403, "forbidden", "the deploy belongs to another Netlify site")
    return None


def choose_distributions(
    requested: str | None, settings: FunctionSettings
) -> tuple[str, ...] | Answer:
    """The distributions to invalidate: the one ``dist`` names, or every configured one."""
    if requested is None:
        return settings.distribution_ids
    if requested in settings.distribution_ids:
        return (requested,)
    return Answer(
        403, "forbidden", "the dist parameter names a distribution this site may not invalidate"
    )


def invalidation_paths(settings: FunctionSettings) -> tuple[str, ...]:
    """The batch's paths, normalized exactly as ``caller_reference`` normalizes them."""
    return tuple(sorted(set(settings.invalidation_paths)))


# -- queueing: one message per distribution, SendMessageBatch with retries -------------------


@dataclass
class Queued:
    """One distribution's message and what became of it: "queued", "retry_later" or "failed"."""

    message: InvalidationMessage
    entry_id: str
    outcome: str = "retry_later"
    message_id: str | None = None
    error_code: str | None = None

    def as_json(self) -> dict:
        item: dict = {
            "distribution_id": self.message.distribution_id,
            "caller_reference": self.message.caller_reference,
            "paths": list(self.message.paths),
            "message_id": self.message_id,
        }
        if self.error_code:
            item["error"] = self.error_code
        return item


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: attempt 0 waits 0.05-0.1 s, then doubling, capped."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
    return ceiling * (0.5 + 0.5 * _jitter())


def _send_batch(queue_url: str, batch: list[Queued], budget: Budget) -> None:
    """One SendMessageBatch for ``batch``; records each entry's outcome on it.

    A whole-call error marks every entry (transient: retry later; else failed); an entry the
    queue refused alone is marked by its own code and ``SenderFault``.
    """
    client = sqs_client()
    entries = [{"Id": item.entry_id, "MessageBody": item.message.to_body()} for item in batch]
    deadline_s = min(SQS_ATTEMPT_DEADLINE_S, (budget.remaining_ms() - ANSWER_MARGIN_MS) / 1000)
    try:
        response = call_with_deadline(
            "SendMessageBatch",
            deadline_s,
            lambda: client.send_message_batch(QueueUrl=queue_url, Entries=entries),
        )
    except AWS_ERRORS as error:
        for item in batch:
            item.error_code = error_code(error)
            item.outcome = "retry_later" if is_transient(error) else "failed"
        return
    by_id = {item.entry_id: item for item in batch}
    for done in response.get("Successful", []):
        item = by_id.get(done.get("Id"))
        if item is not None:
            item.outcome, item.message_id, item.error_code = "queued", done.get("MessageId"), None
    for refused in response.get("Failed", []):
        item = by_id.get(refused.get("Id"))
        if item is not None:
            item.error_code = str(refused.get("Code") or "Unknown")
            item.outcome = "failed" if refused.get("SenderFault") else "retry_later"


def queue_all(queue_url: str, messages: list[InvalidationMessage], budget: Budget) -> list[Queued]:
    """Send every message, retrying the entries that failed transiently while time allows."""
    results = [Queued(message, entry_id=f"d{index}") for index, message in enumerate(messages)]
    retry = 0
    while True:
        pending = [item for item in results if item.outcome == "retry_later"]
        for start in range(0, len(pending), SQS_BATCH_MAX):
            if budget.remaining_ms() < RESERVE_MS:  # this attempt could outlast the Lambda
                break
            _send_batch(queue_url, pending[start : start + SQS_BATCH_MAX], budget)
        pending = [item for item in results if item.outcome == "retry_later"]
        if not pending:
            break
        delay = backoff_seconds(retry)
        if budget.remaining_ms() - delay * 1000 < RESERVE_MS:
            break
        logger.warning(
            "SendMessageBatch failed for %d message(s) (%s); retrying in %.2f s",
            len(pending),
            ", ".join(sorted({str(item.error_code) for item in pending})),
            delay,
            extra={"outcome": "retrying"},
        )
        _sleep(delay)
        retry += 1
    for item in results:
        if item.outcome == "retry_later" and item.error_code is None:
            item.error_code = "OutOfTime"  # never attempted: no time was left
    return results


def _log_queued(item: Queued) -> None:
    message = item.message
    logger.log(
        logging.INFO if item.outcome == "queued" else logging.ERROR,
        "distribution %s: %s",
        message.distribution_id,
        item.outcome,
        extra={
            "deploy_id": message.deploy_id,
            "distribution_id": message.distribution_id,
            "outcome": item.outcome,
            "message_id": item.message_id,
            "caller_reference": message.caller_reference,
            "error_code": item.error_code,
        },
    )


def summarize(deploy_id: str, results: list[Queued]) -> Answer:
    """202 when every message is queued; 500 naming QUEUE_URL if the queue refused; else 503."""
    for item in results:
        _log_queued(item)
    details = {"deploy_id": bounded(deploy_id), "invalidations": [r.as_json() for r in results]}
    failed = [r for r in results if r.outcome == "failed"]
    waiting = [r for r in results if r.outcome == "retry_later"]
    variable = webhook_settings.ENV_QUEUE_URL
    if failed:
        # A missing queue or a denied send needs the operator; retrying would not help.
        codes = ", ".join(sorted({str(r.error_code) for r in failed}))
        return Answer(
            500,
            "error",
            f"{variable}: the queue refused the message(s) ({codes})",
            {**details, "variable": variable},
        )
    if waiting:
        names = ", ".join(f"{r.message.distribution_id} ({r.error_code})" for r in waiting)
        return Answer(
            503,
            "retry_later",
            f"the queue did not accept the invalidation of {names} in time; "
            "redelivering the notification is safe",
            {**details, "retry_after": RETRY_AFTER_TRANSIENT_S},
            headers={"Retry-After": str(RETRY_AFTER_TRANSIENT_S)},
        )
    return Answer(202, "queued", f"queued {len(results)} invalidation(s)", details)


# -- the handler ----------------------------------------------------------------------------------


def handle(request: AlbRequest, context: object, log_fields: dict) -> Answer:
    """parse -> authenticate -> decide -> act, in the order the contract gives the decisions.

    ``log_fields`` collects what the final log line should say about the deploy.
    """
    budget = Budget(context)
    current = settings()
    if isinstance(current, SettingsError):
        return Answer(
            500,
            "error",
            f"bad setting {current.variable}: {current.problem}",
            {"variable": current.variable},
        )
    refusal = check_path(request, current)
    if refusal:
        return refusal
    refusal = check_method(request)
    if refusal:
        return refusal
    secrets = _secrets(current.secrets_parameter, budget)
    if isinstance(secrets, Answer):
        return secrets
    refusal = authenticate(request, secrets, time.time())
    if refusal:
        return refusal
    deploy = parse_deploy(request.body)
    if isinstance(deploy, Answer):
        return deploy
    log_fields.update(deploy_id=bounded(deploy.id), site_id=deploy.site_id, context=deploy.context)
    event_name = request.header(NETLIFY_EVENT_HEADER)
    refusal = judge_deploy(deploy, event_name, current)
    if refusal:
        return refusal
    targets = choose_distributions(
        request.query_text(webhook_settings.DISTRIBUTION_QUERY_PARAMETER), current
    )
    if isinstance(targets, Answer):
        return targets
    paths = invalidation_paths(current)
    event = event_name.strip() if event_name is not None else None
    reference = webhook_settings.caller_reference(
        deploy.id,
        paths,
        event=event,
        published_at=deploy.published_at,
        updated_at=deploy.updated_at,
    )
    received_at = utc_now_iso()
    messages = [
        new_message(
            deploy_id=deploy.id,
            site_id=deploy.site_id,
            event=event,
            context=deploy.context,
            distribution_id=distribution_id,
            paths=paths,
            caller_reference=reference,
            received_at=received_at,
        )
        for distribution_id in targets
    ]
    return summarize(deploy.id, queue_all(current.queue_url, messages, budget))


def handler(event: dict, context: object) -> dict:
    """Lambda entry point for the ALB target group or the function URL; always answers in the
    shape of the event that came in."""
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    url_event = is_function_url_event(event)
    multi_value = isinstance(event, dict) and "multiValueHeaders" in event

    def shaped(answer: Answer) -> dict:
        return respond_url(answer) if url_event else respond(answer, multi_value)

    log_fields: dict = {"request_id": request_id}
    try:
        request = parse_url_event(event) if url_event else parse_event(event)
        answer = handle(request, context, log_fields)
    except Exception as error:  # never raise: the ALB would answer 502 with no explanation
        logger.exception(
            "unexpected %s", type(error).__name__, extra={**log_fields, "outcome": "error"}
        )
        answer = Answer(
            500, "error", "unexpected error; see the function's log", {"request_id": request_id}
        )
    # One line per request, like an access log; the reasons never quote a secret or the body.
    logger.info(
        "answered %s %s: %s",
        answer.status_code,
        answer.status,
        answer.reason,
        extra={**log_fields, "outcome": answer.status, "status_code": answer.status_code},
    )
    try:
        return shaped(answer)
    except Exception:  # shaping only serializes plain values; this is the last safety net
        logger.exception("cannot serialize the answer", extra=log_fields)
        return shaped(Answer(500, "error", "unexpected error", {"request_id": request_id}))
