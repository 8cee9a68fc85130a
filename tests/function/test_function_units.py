"""The pure parts, without AWS: event parsing, signatures, decisions, backoff, response shape."""

from __future__ import annotations

import hashlib
import time

import jwt
import pytest
from botocore.retries.standard import ExponentialBackoff

from function import handler, webhook_jws
from function.webhook_alb import Answer, parse_event, respond
from function.webhook_settings import FunctionSettings, SettingsError, parse_secrets, secrets_value
from infra.function import TIMEOUT_SECONDS  # the Lambda timeout the program sets
from tests.function.function_testkit import JWS_SECRET, assert_alb_response, load_event, sign

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SETTINGS = FunctionSettings(
    distribution_ids=("E1AAA", "E2BBB"),
    secrets_parameter="/p",
    queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/q",
    netlify_site_id="site-1",
)


# -- webhook_alb ----------------------------------------------------------------------------


def test_single_value_event_is_read_with_lowercased_headers_and_decoded_query():
    event = load_event("alb_encoded_query.json")
    event["headers"]["X-Mixed-Case"] = "yes"
    request = parse_event(event)
    assert request.multi_value is False
    assert request.header("x-mixed-case") == "yes"
    assert request.header("X-NETLIFY-EVENT") == "deploy_created"
    assert request.query_text("source") == "netlify deploy hook"
    assert request.query_bytes("token") == b"Enc0ded_Tok3n-with-escapes"


def test_multi_value_event_keeps_the_last_values():
    event = load_event("alb_multi_value.json")
    event["multiValueHeaders"]["x-netlify-event"] = ["deploy_building", "deploy_created"]
    request = parse_event(event)
    assert request.multi_value is True
    assert request.header("x-netlify-event") == "deploy_created"
    assert request.query_text("token") == event["multiValueQueryStringParameters"]["token"][-1]


def test_percent_encoded_query_names_are_decoded():
    request = parse_event({"queryStringParameters": {"%74oken": "abc"}})
    assert request.query_text("token") == "abc"


def test_plus_in_a_query_value_stays_a_plus():
    # Percent-decoding only: a literal "+" is not a space (the token may contain one).
    assert parse_event({"queryStringParameters": {"t": "a+b"}}).query_text("t") == "a+b"


def test_base64_body_is_decoded_and_bad_base64_is_none():
    assert parse_event({"body": "aGk=", "isBase64Encoded": True}).body == b"hi"
    assert parse_event({"body": "not base64!", "isBase64Encoded": True}).body is None
    assert parse_event({"body": None}).body == b""


@pytest.mark.parametrize("multi_value", [False, True])
def test_every_status_the_handler_uses_has_an_alb_shape(multi_value):
    for code in (200, 202, 400, 401, 403, 405, 413, 500, 502, 503):
        response = respond(Answer(code, "s", "r", headers={"Retry-After": "5"}), multi_value)
        assert assert_alb_response(response, multi_value) == {"status": "s", "reason": "r"}


def test_oversized_answer_drops_path_lists_instead_of_breaking_the_alb():
    items = [{"distribution_id": "E1", "paths": ["/" + "p" * 500] * 3000}]
    response = respond(Answer(202, "invalidating", "r", {"invalidations": items}), False)
    assert len(response["body"]) < 1_000_000
    body = assert_alb_response(response, False)
    assert body["invalidations"][0]["path_count"] == 3000


# -- webhook_jws (signatures made by PyJWT) -----------------------------------------------------


def test_pyjwt_signature_is_accepted():
    assert webhook_jws.signature_problem(sign(b"{}"), JWS_SECRET, b"{}", time.time()) is None


def test_uppercase_hex_digest_is_accepted():
    body = b'{"id": "x"}'
    token = jwt.encode(
        {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest().upper()},
        JWS_SECRET,
        algorithm="HS256",
    )
    assert webhook_jws.signature_problem(token, JWS_SECRET, body, time.time()) is None


@pytest.mark.parametrize(
    "signature",
    ["a.b", "a.b.c.d", "!!!.e30.", "e30.e30.e30", "eyJhbGciOiJIUzI1NiJ9.\u00e9.x", " "],
)
def test_malformed_signatures_are_reported_not_raised(signature):
    assert webhook_jws.signature_problem(signature, JWS_SECRET, b"{}", time.time())


def test_problem_reasons_never_quote_the_signature_or_secret():
    signature = sign(b"other")
    problem = webhook_jws.signature_problem(signature, JWS_SECRET, b"{}", time.time())
    assert problem and signature not in problem and JWS_SECRET not in problem


# -- decisions ----------------------------------------------------------------------------------


def deploy(**fields):
    values = {"id": "d1", "site_id": "site-1", "state": "ready", "context": "production"}
    values.update(fields)
    return handler.Deploy(**values)


def test_judge_deploy_acts_on_a_ready_production_deploy_of_the_site():
    assert handler.judge_deploy(deploy(), "deploy_created", SETTINGS) is None
    assert handler.judge_deploy(deploy(), None, SETTINGS) is None


@pytest.mark.parametrize(
    ("fields", "event_name", "status"),
    [
        ({}, "deploy_failed", 200),
        ({"state": "error"}, None, 200),
        ({"context": "deploy-preview"}, None, 200),
        ({"site_id": "site-2"}, None, 403),
        ({"site_id": None}, None, 403),
    ],
)
def test_judge_deploy_refusals(fields, event_name, status):
    answer = handler.judge_deploy(deploy(**fields), event_name, SETTINGS)
    assert answer.status_code == status


def test_choose_distributions():
    assert handler.choose_distributions(None, SETTINGS) == ("E1AAA", "E2BBB")
    assert handler.choose_distributions("E2BBB", SETTINGS) == ("E2BBB",)
    assert handler.choose_distributions("e2bbb", SETTINGS).status_code == 403


def test_backoff_grows_and_is_capped(monkeypatch):
    monkeypatch.setattr(handler, "_jitter", lambda: 1.0)
    delays = [handler.backoff_seconds(n) for n in range(10)]
    assert delays[:3] == [0.1, 0.2, 0.4]
    assert max(delays) == handler.BACKOFF_CAP_S
    monkeypatch.setattr(handler, "_jitter", lambda: 0.0)
    assert handler.backoff_seconds(0) == 0.05


# -- secrets contract ---------------------------------------------------------------------------


TOKEN_16 = "tok-0123456789abc"


def test_secrets_round_trip_and_hide_their_values_from_repr():
    secrets = parse_secrets(secrets_value(TOKEN_16, "jws-secret", "nfp_api_token"))
    assert (secrets.token, secrets.jws_secret) == (TOKEN_16, "jws-secret")
    assert secrets.netlify_api_token == "nfp_api_token"
    for value in (TOKEN_16, "jws-secret", "nfp_api_token"):
        assert value not in repr(secrets)
    assert parse_secrets(secrets_value(TOKEN_16)).jws_secret is None
    assert parse_secrets(secrets_value(TOKEN_16)).netlify_api_token is None


@pytest.mark.parametrize(
    "raw",
    [
        '{"token": "short"}',  # under 16 characters
        '{"token": "' + "x" * 129 + '"}',  # over 128
        '{"token": "has a blank in it!"}',
        '{"token": "tok-0123456789ab*"}',  # an ALB wildcard
        '{"token": "tok-0123456789\\ud800x"}',  # a lone surrogate
        '{"token": "tok-0123456789abc", "jws_secret": "bad\\udc00"}',
        '{"token": "tok-0123456789abc", "netlify_api_token": 5}',
    ],
)
def test_secrets_the_program_would_refuse_are_refused_naming_the_parameter(raw):
    with pytest.raises(SettingsError) as caught:
        parse_secrets(raw)
    assert caught.value.variable == "SECRETS_PARAMETER"
    assert "tok-0123456789" not in str(caught.value)  # never quoted


@pytest.mark.parametrize("raw", ["", "tok", "null", '{"token": ""}', '{"token": 1}'])
def test_bad_secrets_name_the_parameter_variable(raw):
    with pytest.raises(SettingsError) as caught:
        parse_secrets(raw)
    assert caught.value.variable == "SECRETS_PARAMETER"


def test_reset_state_drops_the_clients(world):
    client = handler.sqs_client()
    handler.reset_state(keep_clients=True)
    assert handler.sqs_client() is client
    handler.reset_state()
    assert handler.sqs_client() is not client


# -- time budget (the function's timeout is 30 s; past it the ALB answers a bare 502) -----------


def attempts(config) -> int:
    assert config.retries["mode"] == "standard"
    return config.retries["total_max_attempts"]


def worst_case_call_ms(config) -> float:
    """One API call through a client with ``config``: every attempt running into its timeouts,
    plus botocore's standard-mode waits between attempts (at most min(2**i, 20) s before retry
    i + 1, and up to 5 s more when the service sends x-amz-retry-after)."""
    tries = attempts(config)
    waits_s = sum(
        min(2**i, ExponentialBackoff._MAX_BACKOFF)
        + getattr(ExponentialBackoff, "_RETRY_AFTER_MAX_ADDITIONAL", 0)
        for i in range(tries - 1)
    )
    return tries * (config.connect_timeout + config.read_timeout) * 1000 + waits_s * 1000


def test_a_send_is_started_only_when_its_deadline_ends_before_the_lambdas(world):
    config = handler.sqs_client().meta.config  # the client the handler really uses
    assert attempts(config) == 1  # our loop retries, knowing the deadline; botocore would not
    assert handler.ANSWER_MARGIN_MS >= 500  # time to log and serialize the answer
    # The hard deadline of one attempt, plus the margin, is what an attempt needs to start...
    assert handler.SQS_ATTEMPT_DEADLINE_S * 1000 + handler.ANSWER_MARGIN_MS <= handler.RESERVE_MS
    # ...and the client's own timeouts end a silent endpoint before that deadline.
    assert worst_case_call_ms(config) <= handler.SQS_ATTEMPT_DEADLINE_S * 1000


def test_the_secrets_fetch_and_one_send_fit_in_the_lambda_timeout(world):
    ssm = handler.ssm_client().meta.config
    assert attempts(ssm) <= 2
    # The fetch is cut at SSM_DEADLINE_S whatever botocore does; then one attempt still fits.
    worst_ms = handler.SSM_DEADLINE_S * 1000 + handler.RESERVE_MS
    assert worst_ms <= TIMEOUT_SECONDS * 1000
