"""The function's logs: structured, and never a secret, a signature or the raw body.

Logs are captured at DEBUG for every logger, as Lambda would emit them with
AWS_LAMBDA_LOG_LEVEL=DEBUG. botocore logs response bodies at DEBUG (SSM's is the decrypted
secret): these tests fail if the handler stops keeping the SDK's loggers above DEBUG.
"""

from __future__ import annotations

import logging

import pytest

from function import handler
from tests.function.function_testkit import (
    BUILD_LOG_TOKEN,
    JWS_SECRET,
    TOKEN,
    deploy,
    event_body,
    request,
    set_header,
    set_query,
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 1, "x", (), None))) | {
    "message",
    "asctime",
}


@pytest.fixture
def debug_logs(world, caplog):
    world.configure(AWS_LAMBDA_LOG_LEVEL="DEBUG")
    caplog.set_level(logging.DEBUG)  # the root logger, as Lambda's DEBUG level sets it
    return caplog


def everything_logged(caplog) -> str:
    """Every message, argument and extra field of every record, as one text."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.extend(repr(value) for key, value in vars(record).items() if key not in _STANDARD)
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def test_no_secret_signature_or_body_reaches_the_logs(world, context, debug_logs):
    accepted = request()
    signature = accepted["headers"]["x-webhook-signature"]
    raw_body = event_body(accepted).decode()
    events = [
        accepted,
        request("alb_multi_value.json"),
        request("alb_base64_body.json"),
        set_query(request(), "token", TOKEN.upper()),  # a near miss of the token
        set_header(request(), "x-webhook-signature", signature + "x"),
        request(body=deploy(state="building")),
        request(body=b'{"no": "id", "token": "' + TOKEN.encode() + b'"}'),
    ]
    statuses = [handler.handler(event, context)["statusCode"] for event in events]
    assert statuses == [202, 202, 202, 401, 401, 200, 400]

    text = everything_logged(debug_logs)
    assert "answered 202" in text  # the capture works
    for secret in (TOKEN, TOKEN.upper(), JWS_SECRET, signature, BUILD_LOG_TOKEN):
        assert secret not in text
    assert raw_body not in text
    assert '"log_access_attributes"' not in text


def test_sdk_loggers_stay_above_debug_even_when_the_root_is_at_debug(world, debug_logs):
    for name in ("botocore", "boto3", "urllib3"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    # A child logger someone lowered explicitly is raised again when a container starts.
    logging.getLogger("botocore.parsers").setLevel(logging.DEBUG)
    handler.reset_state()
    assert not logging.getLogger("botocore.parsers").isEnabledFor(logging.DEBUG)


def test_decrypted_secrets_stay_out_of_the_logs_when_fetched(world, context, debug_logs):
    handler.reset_state()  # drop the clients too: creating and calling SSM logs the most
    assert handler.handler(request(), context)["statusCode"] == 202
    text = everything_logged(debug_logs)
    assert TOKEN not in text and JWS_SECRET not in text


def test_outcomes_are_logged_with_structured_fields(world, context, debug_logs):
    handler.handler(request(), context)
    per_distribution = [r for r in debug_logs.records if getattr(r, "distribution_id", None)]
    assert {r.distribution_id for r in per_distribution} == set(world.distribution_ids)
    for record in per_distribution:
        assert record.deploy_id == "6566f3c2b9a1d40008a7e1f3"
        assert record.outcome == "queued"
        assert record.message_id
        assert record.caller_reference.startswith("netlify-6566f3c2b9a1d40008a7e1f3-")
    (final,) = [r for r in debug_logs.records if getattr(r, "status_code", None)]
    assert final.status_code == 202
    assert final.outcome == "queued"
    assert final.site_id == "4f1b9c2e-8d3a-4e6f-9b7c-2a1d5e8f0c3b"
    assert final.request_id == context.aws_request_id


def test_refusals_are_logged_with_their_outcome(world, context, debug_logs):
    handler.handler(set_query(request(), "token", "wrong"), context)
    (final,) = [r for r in debug_logs.records if getattr(r, "status_code", None)]
    assert (final.status_code, final.outcome) == (401, "unauthorized")
