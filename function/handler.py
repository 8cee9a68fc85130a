"""Netlify deploy notification (via an Application Load Balancer) -> CloudFront invalidation.

Lambda handler: ``function.handler.handler``. Each request's story is parse -> authenticate ->
decide -> act -> respond; the decisions are pure functions of the request, the settings and the
secrets, and every answer (refusals included) is an ``Answer`` value turned into the ALB's
response shape by ``webhook_alb.respond``. The handler never raises.

Per container, created at first use and kept: the settings (environment, validated once), the
secrets (one SSM SecureString, decrypted once) and the boto3 clients. Nothing is created at
import, so a cold start costs little more than importing boto3.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from . import webhook_settings
from .webhook_alb import MAX_BODY_BYTES, AlbRequest, Answer, parse_event, respond
from .webhook_jws import signature_problem
from .webhook_settings import FunctionSecrets, FunctionSettings, SettingsError

logger = logging.getLogger("webhook")

NETLIFY_EVENT_HEADER = "X-Netlify-Event"
SIGNATURE_HEADER = "X-Webhook-Signature"
ACTED_ON_EVENT = "deploy_created"  # the event the Netlify UI calls "Deploy succeeded"
READY_STATE = "ready"

# The time budget. The function runs with a 30 s timeout (infra/function.py); if Lambda stops it
# mid-call, the ALB answers a bare 502 instead of our 503 with Retry-After. So every call is
# bounded by its client's timeouts, and a CloudFront attempt is started only while its worst case
# (connect + read timeouts; botocore makes one attempt) still leaves ANSWER_MARGIN_MS to answer.
CLOUDFRONT_CONNECT_TIMEOUT_S = 2
CLOUDFRONT_READ_TIMEOUT_S = 5
ANSWER_MARGIN_MS = 1000  # log the outcome and serialize the answer
RESERVE_MS = (CLOUDFRONT_CONNECT_TIMEOUT_S + CLOUDFRONT_READ_TIMEOUT_S) * 1000 + ANSWER_MARGIN_MS
# The secrets are fetched once per container, before the first CloudFront attempt. Its worst case
# in botocore's standard mode: 2 attempts x (2 + 3) s, plus the wait between them (<= 1 s, and up
# to 5 s more if SSM sends x-amz-retry-after) = 16 s. 16 s + RESERVE_MS (8 s) = 24 s < 30 s: at
# least one CloudFront attempt always fits after a slow fetch.
SSM_CONNECT_TIMEOUT_S = 2
SSM_READ_TIMEOUT_S = 3
SSM_ATTEMPTS = 2
# Backoff between rounds of CreateInvalidation retries.
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 5.0
# Without a Lambda context (a local run), pretend the function was given this long.
DEFAULT_BUDGET_MS = 10_000
# What the 503 suggests to the sender: invalidations in progress take minutes to clear,
# throttling and 5xx seconds.
RETRY_AFTER_BUSY_S = 120
RETRY_AFTER_TRANSIENT_S = 30

TRANSIENT_ERROR_CODES = frozenset(
    {
        "TooManyInvalidationsInProgress",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)

# Our retry loop owns the timing (it knows the Lambda deadline), so botocore makes one attempt.
_CLOUDFRONT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=CLOUDFRONT_CONNECT_TIMEOUT_S,
    read_timeout=CLOUDFRONT_READ_TIMEOUT_S,
)
# The secrets are read once per container; botocore's own retry is enough there (see above).
_SSM_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": SSM_ATTEMPTS},
    connect_timeout=SSM_CONNECT_TIMEOUT_S,
    read_timeout=SSM_READ_TIMEOUT_S,
)

# The AWS SDK logs request and response bodies at DEBUG: SSM's answer is the decrypted secret.
_SDK_LOGGERS = ("boto3", "botocore", "urllib3", "s3transfer")

# Seams for tests: the backoff's sleep and jitter.
_sleep = time.sleep
_jitter = random.random


# -- container state ---------------------------------------------------------------------------


@dataclass
class _ContainerState:
    settings: FunctionSettings | None = None
    settings_error: SettingsError | None = None
    secrets: FunctionSecrets | None = None
    # A permanent failure to read the secrets (missing, malformed, access denied), kept like
    # settings_error: the parameter will not fix itself within this container's life.
    secrets_error: Answer | None = None
    clients: dict = field(default_factory=dict)


_state = _ContainerState()


def _configure_logging() -> None:
    # Lambda's application log level (JSON log format); its TRACE is DEBUG to Python.
    name = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper().replace("TRACE", "DEBUG")
    level = logging.getLevelName(name)
    logger.setLevel(level if isinstance(level, int) else logging.INFO)
    # Clamp the SDK's loggers (and any child given its own level) whatever the root level is:
    # Lambda's AWS_LAMBDA_LOG_LEVEL=DEBUG lowers the root logger, and with it theirs.
    names = [
        name for name in logging.root.manager.loggerDict if name.partition(".")[0] in _SDK_LOGGERS
    ]
    for name in {*_SDK_LOGGERS, *names}:
        sdk_logger = logging.getLogger(name)
        if sdk_logger.level < logging.INFO and (sdk_logger.level or "." not in name):
            sdk_logger.setLevel(logging.WARNING)


_configure_logging()


def reset_state(keep_clients: bool = False) -> None:
    """Forget the cached settings, secrets (or their failure) and clients, as a new container would.

    For tests and the local stack, which change the environment between runs. Tests that only
    change settings may keep the boto3 clients, which cost ~0.1 s each to create.
    """
    global _state
    clients = _state.clients if keep_clients else {}
    _state = _ContainerState(clients=clients)
    _configure_logging()


def settings() -> FunctionSettings | SettingsError:
    """The settings from the environment, read and validated once per container."""
    if _state.settings is not None:
        return _state.settings
    if _state.settings_error is None:
        try:
            _state.settings = webhook_settings.load_settings(os.environ)
            return _state.settings
        except SettingsError as error:
            _state.settings_error = error
            # Once per container: every request will answer 500 until the setting is fixed.
            logger.error(
                "bad setting %s: %s",
                error.variable,
                error.problem,
                extra={"outcome": "misconfigured", "variable": error.variable},
            )
            return error
    return _state.settings_error


def _client(service: str, config: Config):
    # boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) by itself.
    if service not in _state.clients:
        _configure_logging()
        _state.clients[service] = boto3.client(service, config=config)
    return _state.clients[service]


def cloudfront_client():
    return _client("cloudfront", _CLOUDFRONT_CONFIG)


def ssm_client():
    return _client("ssm", _SSM_CONFIG)


def _secrets(parameter: str) -> FunctionSecrets | Answer:
    """The token and JWS secret, fetched with decryption on first use and kept.

    A permanent failure is kept too, so it is logged once and answered 500 without asking SSM
    again; a transient one (throttling, 5xx, connection) is answered 503 and retried next time.
    """
    if _state.secrets is not None:
        return _state.secrets
    if _state.secrets_error is not None:
        return _state.secrets_error
    variable = webhook_settings.ENV_SECRETS_PARAMETER
    try:
        response = ssm_client().get_parameter(Name=parameter, WithDecryption=True)
        secrets = webhook_settings.parse_secrets(response["Parameter"]["Value"])
    except (ClientError, BotocoreConnectionError, HTTPClientError) as error:
        code = _error_code(error)
        logger.error(
            "cannot read the secrets parameter %s: %s",
            parameter,
            code,
            extra={"outcome": "secrets_unavailable", "error_code": code},
        )
        if _is_transient(error):
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


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


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
    )


def judge_deploy(
    deploy: Deploy, event_name: str | None, settings: FunctionSettings
) -> Answer | None:
    """200 "ignored" for deploys we do not act on, 403 for another site's; None to act."""
    if event_name is not None and event_name.strip() != ACTED_ON_EVENT:
        return Answer(
            200, "ignored", f"the event {event_name.strip()[:64]!r} is not {ACTED_ON_EVENT!r}"
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


# -- acting: CreateInvalidation with retries ----------------------------------------------------


class Budget:
    """The time this invocation has left, from the Lambda context when there is one."""

    def __init__(self, context: object) -> None:
        getter: Callable[[], float] | None = getattr(context, "get_remaining_time_in_millis", None)
        self._getter = getter if callable(getter) else None
        self._deadline = time.monotonic() + DEFAULT_BUDGET_MS / 1000

    def remaining_ms(self) -> float:
        if self._getter is not None:
            return float(self._getter())
        return (self._deadline - time.monotonic()) * 1000


@dataclass
class Result:
    """One distribution's outcome: "invalidating", "retry_later" or "failed"."""

    distribution_id: str
    caller_reference: str
    paths: tuple[str, ...]
    outcome: str
    invalidation_id: str | None = None
    error_code: str | None = None
    attempts: int = 0

    def as_json(self) -> dict:
        item = {
            "distribution_id": self.distribution_id,
            "invalidation_id": self.invalidation_id,
            "caller_reference": self.caller_reference,
            "paths": list(self.paths),
            "outcome": self.outcome,
            "attempts": self.attempts,
        }
        if self.error_code:
            item["error"] = self.error_code
        return item


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "Unknown")
    return type(error).__name__


def _is_transient(error: Exception) -> bool:
    if isinstance(error, BotocoreConnectionError | HTTPClientError):
        return True  # timeouts, resets, unreachable endpoint
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return _error_code(error) in TRANSIENT_ERROR_CODES or status >= 500 or status == 429
    return False


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: attempt 0 waits 0.125-0.25 s, then doubling, capped."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
    return ceiling * (0.5 + 0.5 * _jitter())


def _attempt(result: Result) -> None:
    """One CreateInvalidation for ``result``'s distribution; records the outcome on it.

    Every attempt carries the same CallerReference, so an attempt that reached CloudFront but
    whose answer was lost is not billed twice.
    """
    result.attempts += 1
    try:
        response = cloudfront_client().create_invalidation(
            DistributionId=result.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(result.paths), "Items": list(result.paths)},
                "CallerReference": result.caller_reference,
            },
        )
    except (ClientError, BotocoreConnectionError, HTTPClientError) as error:
        result.error_code = _error_code(error)
        if not _is_transient(error):
            result.outcome = "failed"
        return
    result.outcome = "invalidating"
    result.invalidation_id = response["Invalidation"]["Id"]
    result.error_code = None


def invalidate_all(
    distribution_ids: tuple[str, ...],
    paths: tuple[str, ...],
    reference: str,
    budget: Budget,
    deploy: Deploy,
) -> list[Result]:
    """CreateInvalidation for every distribution, retrying transient errors while time allows.

    In rounds: every distribution gets its first attempt before any is retried, then the ones
    that failed transiently are retried in turn after one backoff per round, so a busy
    distribution cannot spend the time the others need.
    """
    results = [Result(d, reference, paths, outcome="retry_later") for d in distribution_ids]
    pending = results
    retry = 0
    while pending:
        for result in pending:
            if budget.remaining_ms() < RESERVE_MS:  # this attempt could outlast the Lambda
                break
            _attempt(result)
        pending = [r for r in pending if r.outcome == "retry_later"]
        if not pending:
            break
        delay = backoff_seconds(retry)
        if budget.remaining_ms() - delay * 1000 < RESERVE_MS:
            break
        for result in pending:
            logger.warning(
                "CreateInvalidation for %s failed (%s); retrying in %.2f s",
                result.distribution_id,
                result.error_code,
                delay,
                extra={
                    "deploy_id": deploy.id,
                    "distribution_id": result.distribution_id,
                    "outcome": "retrying",
                    "error_code": result.error_code,
                },
            )
        _sleep(delay)
        retry += 1
    for result in results:
        if result.outcome == "retry_later" and result.error_code is None:
            result.error_code = "OutOfTime"  # never attempted: no time was left
        _log_result(result, deploy)
    return results


def _log_result(result: Result, deploy: Deploy) -> None:
    logger.log(
        logging.INFO if result.outcome == "invalidating" else logging.ERROR,
        "distribution %s: %s",
        result.distribution_id,
        result.outcome,
        extra={
            "deploy_id": deploy.id,
            "distribution_id": result.distribution_id,
            "outcome": result.outcome,
            "invalidation_id": result.invalidation_id,
            "caller_reference": result.caller_reference,
            "error_code": result.error_code,
            "attempts": result.attempts,
        },
    )


def summarize(deploy: Deploy, results: list[Result]) -> Answer:
    """202 when every distribution is invalidating; else the failure's status, listing all."""
    details = {"deploy_id": deploy.id, "invalidations": [r.as_json() for r in results]}
    failed = [r for r in results if r.outcome == "failed"]
    waiting = [r for r in results if r.outcome == "retry_later"]
    if failed:
        # A permanent refusal needs the operator; retrying would not help, so it outranks 503.
        names = ", ".join(f"{r.distribution_id} ({r.error_code})" for r in failed)
        return Answer(
            502, "failed", f"CloudFront refused to invalidate distribution {names}", details
        )
    if waiting:
        busy = any(r.error_code == "TooManyInvalidationsInProgress" for r in waiting)
        retry_after = RETRY_AFTER_BUSY_S if busy else RETRY_AFTER_TRANSIENT_S
        names = ", ".join(f"{r.distribution_id} ({r.error_code})" for r in waiting)
        return Answer(
            503,
            "retry_later",
            f"CloudFront did not accept the invalidation of {names} in time; "
            "redelivering the notification is safe",
            {**details, "retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    count = len(results)
    return Answer(202, "invalidating", f"invalidating {count} distribution(s)", details)


# -- the handler ----------------------------------------------------------------------------------


def handle(request: AlbRequest, context: object, log_fields: dict) -> Answer:
    """parse -> authenticate -> decide -> act, in the order the contract gives the decisions.

    ``log_fields`` collects what the final log line should say about the deploy.
    """
    current = settings()
    if isinstance(current, SettingsError):
        return Answer(
            500,
            "error",
            f"bad setting {current.variable}: {current.problem}",
            {"variable": current.variable},
        )
    refusal = check_method(request)
    if refusal:
        return refusal
    secrets = _secrets(current.secrets_parameter)
    if isinstance(secrets, Answer):
        return secrets
    refusal = authenticate(request, secrets, time.time())
    if refusal:
        return refusal
    deploy = parse_deploy(request.body)
    if isinstance(deploy, Answer):
        return deploy
    log_fields.update(deploy_id=deploy.id, site_id=deploy.site_id, context=deploy.context)
    refusal = judge_deploy(deploy, request.header(NETLIFY_EVENT_HEADER), current)
    if refusal:
        return refusal
    targets = choose_distributions(
        request.query_text(webhook_settings.DISTRIBUTION_QUERY_PARAMETER), current
    )
    if isinstance(targets, Answer):
        return targets
    paths = invalidation_paths(current)
    reference = webhook_settings.caller_reference(deploy.id, paths)
    budget = Budget(context)
    return summarize(deploy, invalidate_all(targets, paths, reference, budget, deploy))


def handler(event: dict, context: object) -> dict:
    """Lambda entry point for the ALB target group; always returns an ALB response."""
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    multi_value = isinstance(event, dict) and "multiValueHeaders" in event
    log_fields: dict = {"request_id": request_id}
    try:
        answer = handle(parse_event(event), context, log_fields)
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
        return respond(answer, multi_value)
    except Exception:  # respond() only serializes plain values; this is the last safety net
        logger.exception("cannot serialize the answer", extra=log_fields)
        return respond(Answer(500, "error", "unexpected error", {"request_id": request_id}), False)
