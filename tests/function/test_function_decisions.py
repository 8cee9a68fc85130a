"""Every decision of the ingest, in the contract's order, against moto's SSM, SQS and CloudFront.

Refusals are checked twice: the answer, and that nothing reached the queue (or CloudFront).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from urllib.parse import quote

import jwt
import pytest

from function import handler, webhook_settings
from function.invalidation_message import MAX_COPIED_CHARS
from tests.function.function_testkit import (
    ENCODED_FIXTURE_TOKEN,
    FIXTURE_DEPLOY_ID,
    FIXTURE_SITE_ID,
    JWS_SECRET,
    TOKEN,
    assert_alb_response,
    deploy,
    event_body,
    load_event,
    reference_for,
    request,
    set_header,
    set_query,
    sign,
    signed,
    with_body,
)

FIXTURES = [
    "alb_single_value.json",
    "alb_multi_value.json",
    "alb_base64_body.json",
]


pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _header(alg: str) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        .decode()
        .rstrip("=")
    )


def call(event, context):
    response = handler.handler(event, context)
    return response, assert_alb_response(response, "multiValueHeaders" in event)


def refused(world, event, context, status_code):
    before = world.queued_count(), world.invalidation_count()
    response, body = call(event, context)
    assert response["statusCode"] == status_code, body
    # Nothing queued, and the ingest never invalidates by itself.
    assert (world.queued_count(), world.invalidation_count()) == before
    return response, body


# -- 500: bad settings, before anything else ---------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DISTRIBUTION_IDS", ""),
        ("DISTRIBUTION_IDS", "E123,not-an-id!"),
        ("INVALIDATION_PATHS", "no-leading-slash"),
        ("INVALIDATION_PATHS", "/a*/b"),
        ("SECRETS_PARAMETER", ""),
        ("QUEUE_URL", ""),
        ("QUEUE_URL", "my-queue"),
        ("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/12345/q"),
        ("QUEUE_URL", "ftp://sqs.us-east-1.amazonaws.com/123456789012/q"),
    ],
)
def test_bad_setting_answers_500_naming_the_variable(world, context, variable, value):
    world.configure(**{variable: value})
    _, body = refused(world, request(), context, 500)
    assert body["status"] == "error"
    assert body["variable"] == variable
    assert variable in body["reason"]


def test_bad_setting_is_reported_before_the_method_check(world, context):
    world.configure(DISTRIBUTION_IDS=None)
    event = request()
    event["httpMethod"] = "GET"
    refused(world, event, context, 500)


def test_bad_setting_is_logged_once_per_container(world, context, caplog):
    world.configure(DISTRIBUTION_IDS="bad id")
    for _ in range(3):
        refused(world, request(), context, 500)
    errors = [
        r for r in caplog.records if r.levelname == "ERROR" and "DISTRIBUTION_IDS" in r.msg % r.args
    ]
    assert len(errors) == 1
    assert errors[0].variable == "DISTRIBUTION_IDS"


def test_settings_are_read_once_per_container(world, context):
    assert call(request(), context)[0]["statusCode"] == 202
    world.monkeypatch.setenv("DISTRIBUTION_IDS", "")  # not reloaded until a new container
    assert call(request(), context)[0]["statusCode"] == 202


def test_missing_secrets_parameter_answers_500_naming_it(world, context):
    world.ssm.delete_parameter(Name=world.ssm.describe_parameters()["Parameters"][0]["Name"])
    handler.reset_state()
    _, body = refused(world, request(), context, 500)
    assert body["variable"] == "SECRETS_PARAMETER"
    assert "ParameterNotFound" in body["reason"]


@pytest.mark.parametrize("value", ["plain-token-not-json", "[1, 2]", '{"jws_secret": "x"}'])
def test_malformed_secrets_answer_500_without_quoting_them(world, context, value):
    world.ssm.put_parameter(
        Name=world.ssm.describe_parameters()["Parameters"][0]["Name"],
        Value=value,
        Type="SecureString",
        Overwrite=True,
    )
    handler.reset_state()
    response, body = refused(world, request(), context, 500)
    assert body["variable"] == "SECRETS_PARAMETER"
    assert value not in response["body"]


def test_secrets_are_fetched_once_and_cached(world, context):
    assert call(request(), context)[0]["statusCode"] == 202
    world.ssm.put_parameter(
        Name=world.ssm.describe_parameters()["Parameters"][0]["Name"],
        Value=webhook_settings.secrets_value("rotated-token-0123456789"),
        Type="SecureString",
        Overwrite=True,
    )
    assert call(request(), context)[0]["statusCode"] == 202  # the cached token still holds
    handler.reset_state()  # a new container reads the rotated value
    assert call(request(), context)[0]["statusCode"] == 401


# -- 405 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD", "OPTIONS", "post", ""])
def test_non_post_method_answers_405(world, context, method):
    event = request()
    event["httpMethod"] = method
    response, body = refused(world, event, context, 405)
    assert response["headers"]["Allow"] == "POST"
    assert body["status"] == "rejected"


def test_405_comes_before_authentication(world, context):
    event = set_query(request(), "token", "wrong")
    event["httpMethod"] = "GET"
    refused(world, event, context, 405)


# -- 401: the token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_token",
    [None, "", "wrong", TOKEN.upper(), TOKEN.lower(), TOKEN + "x", TOKEN[:-1], f"{TOKEN} "],
)
def test_wrong_or_missing_token_answers_401(world, context, raw_token):
    # Upper/lower case: the ALB's rule matched case-insensitively; the function must not.
    event = set_query(request(), "token", raw_token)
    _, body = refused(world, event, context, 401)
    assert body["status"] == "unauthorized"


def test_percent_encoded_token_is_decoded(world, context):
    world.put_secrets(token=ENCODED_FIXTURE_TOKEN)
    response, _ = call(signed(load_event("alb_encoded_query.json")), context)
    assert response["statusCode"] == 202


def test_a_double_encoded_token_does_not_match(world, context):
    # "%2541" decodes once, to the text "%41", not to "A".
    world.put_secrets(token="Tok3n-0123456789-A")
    assert (
        call(set_query(request(), "token", "Tok3n-0123456789-%41"), context)[0]["statusCode"] == 202
    )
    refused(world, set_query(request(), "token", "Tok3n-0123456789-%2541"), context, 401)


def test_a_non_ascii_token_in_the_request_is_compared_as_bytes_and_refused(world, context):
    refused(world, set_query(request(), "token", quote(TOKEN + "-é-✓")), context, 401)
    refused(world, set_query(request(), "token", TOKEN[:-1] + "%FF"), context, 401)


def test_multi_value_token_uses_the_last_value(world, context):
    event = request("alb_multi_value.json")
    assert event["multiValueQueryStringParameters"]["token"] == ["an-earlier-value", TOKEN]
    assert call(event, context)[0]["statusCode"] == 202
    event = request("alb_multi_value.json")
    event["multiValueQueryStringParameters"]["token"] = [TOKEN, "a-later-value"]
    refused(world, event, context, 401)


def test_unauthenticated_request_learns_nothing_about_the_body(world, context):
    # Not JSON, too large, another site: still only "unauthorized".
    for body in (b"not json", b"x" * (handler.MAX_BODY_BYTES + 1), b"{}"):
        event = set_query(with_body(load_event("alb_single_value.json"), body), "token", "no")
        _, answer = refused(world, event, context, 401)
        assert answer["reason"] == "missing or wrong token"


# -- 401: the JWS -------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES)
def test_signed_request_is_accepted_in_every_event_shape(world, context, fixture):
    response, body = call(request(fixture), context)
    assert response["statusCode"] == 202, body


def test_missing_signature_answers_401_when_a_jws_secret_is_configured(world, context):
    refused(world, set_header(request(), "x-webhook-signature", None), context, 401)


def test_without_a_jws_secret_the_token_alone_authenticates(world, context):
    world.put_secrets(jws_secret=None)
    event = set_header(request(), "x-webhook-signature", None)
    assert call(event, context)[0]["statusCode"] == 202


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda body: sign(body, secret="another-secret"), id="wrong-secret"),
        pytest.param(lambda body: sign(b"another body"), id="other-body"),
        pytest.param(lambda body: sign(body, iss="not-netlify"), id="wrong-issuer"),
        pytest.param(lambda body: sign(body, algorithm="HS512"), id="hs512"),
        pytest.param(lambda body: sign(body, algorithm="HS384"), id="hs384"),
        pytest.param(lambda body: sign(body, secret=None, algorithm="none"), id="alg-none"),
        pytest.param(
            lambda body: sign(body).replace(sign(body).split(".")[0], _header("none"), 1),
            id="alg-none-with-hs256-mac",
        ),
        pytest.param(lambda body: sign(body, exp=1_000_000_000), id="expired"),
        pytest.param(lambda body: sign(body, nbf=4_000_000_000), id="not-yet-valid"),
        pytest.param(lambda body: sign(body) + "x", id="tampered-mac"),
        pytest.param(lambda body: "not.a.jws", id="garbage"),
        pytest.param(lambda body: "", id="empty"),
    ],
)
def test_invalid_signature_answers_401(world, context, make_signature):
    event = request()
    set_header(event, "x-webhook-signature", make_signature(event_body(event)))
    _, body = refused(world, event, context, 401)
    assert "X-Webhook-Signature" in body["reason"]


def test_signature_without_sha256_claim_is_refused(world, context):
    event = request()
    token = jwt.encode({"iss": "netlify"}, JWS_SECRET, algorithm="HS256")
    refused(world, set_header(event, "x-webhook-signature", token), context, 401)


def test_signature_header_name_is_case_insensitive(world, context):
    event = request()
    signature = event["headers"].pop("x-webhook-signature")
    event["headers"]["X-Webhook-SIGNATURE"] = signature
    assert call(event, context)[0]["statusCode"] == 202


def test_base64_body_is_hashed_after_decoding(world, context):
    event = request("alb_base64_body.json")
    assert event["isBase64Encoded"] is True
    assert call(event, context)[0]["statusCode"] == 202
    # A signature over the base64 text itself must not pass.
    set_header(event, "x-webhook-signature", sign(event["body"].encode()))
    refused(world, event, context, 401)


def test_a_signature_for_one_body_does_not_cover_another(world, context):
    event = request()
    with_body(event, event_body(event).replace(b'"production"', b'"production" '))
    refused(world, event, context, 401)


# -- 413 / 400 ------------------------------------------------------------------------------------


def test_body_over_one_megabyte_answers_413(world, context):
    padding = "x" * handler.MAX_BODY_BYTES
    _, body = refused(world, request(body=deploy(padding=padding)), context, 413)
    assert body["status"] == "rejected"


def test_body_of_exactly_the_limit_is_accepted(world, context):
    document = deploy(padding="")
    size = len(json.dumps(document).encode())
    document["padding"] = "x" * (handler.MAX_BODY_BYTES - size)
    event = request(body=document)
    assert len(event_body(event)) == handler.MAX_BODY_BYTES
    assert call(event, context)[0]["statusCode"] == 202


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2, 3]",
        b'"a string"',
        b"null",
        b"{}",
        json.dumps({"deploy_id": "abc", "state": "ready"}).encode(),
        json.dumps({"id": 42, "state": "ready", "context": "production"}).encode(),
        json.dumps({"id": "", "state": "ready", "context": "production"}).encode(),
        b"[" * 100_000,
    ],
)
def test_body_without_a_deploy_id_answers_400(world, context, body):
    refused(world, request(body=body), context, 400)


def test_base64_body_that_is_not_utf8_answers_400(world, context):
    event = signed(with_body(load_event("alb_base64_body.json"), b"\xff\xfe not utf-8"))
    refused(world, event, context, 400)


def test_undecodable_base64_body_answers_401_when_signatures_are_required(world, context):
    event = request("alb_base64_body.json")
    event["body"] = "%%% not base64 %%%"
    refused(world, event, context, 401)
    world.put_secrets(jws_secret=None)
    refused(world, event, context, 400)


# -- 200 ignored ----------------------------------------------------------------------------------


@pytest.mark.parametrize("event_name", ["deploy_building", "deploy_failed", "deploy_locked", ""])
def test_other_netlify_events_are_ignored(world, context, event_name):
    event = set_header(request(), "x-netlify-event", event_name)
    _, body = refused(world, event, context, 200)
    assert body["status"] == "ignored"


def test_missing_event_header_is_judged_by_the_body(world, context):
    event = set_header(request(), "x-netlify-event", None)
    assert call(event, context)[0]["statusCode"] == 202
    event = set_header(request(body=deploy(state="error")), "x-netlify-event", None)
    _, body = refused(world, event, context, 200)
    assert body["status"] == "ignored"


@pytest.mark.parametrize("state", ["building", "error", "new", None])
def test_deploy_not_ready_is_ignored(world, context, state):
    _, body = refused(world, request(body=deploy(state=state)), context, 200)
    assert body["status"] == "ignored"
    assert "state" in body["reason"]


@pytest.mark.parametrize("deploy_context", ["deploy-preview", "branch-deploy", None, "Production"])
def test_deploy_context_outside_the_setting_is_ignored(world, context, deploy_context):
    _, body = refused(world, request(body=deploy(context=deploy_context)), context, 200)
    assert body["status"] == "ignored"


def test_deploy_contexts_setting_widens_what_is_acted_on(world, context):
    world.configure(DEPLOY_CONTEXTS="production,branch-deploy")
    assert call(request(body=deploy(context="branch-deploy")), context)[0]["statusCode"] == 202
    refused(world, request(body=deploy(context="deploy-preview")), context, 200)


# -- 403 ------------------------------------------------------------------------------------------


def test_deploy_of_another_site_answers_403(world, context):
    world.configure(NETLIFY_SITE_ID="some-other-site")
    _, body = refused(world, request(), context, 403)
    assert body["status"] == "forbidden"


def test_deploy_of_the_configured_site_is_acted_on(world, context):
    world.configure(NETLIFY_SITE_ID=FIXTURE_SITE_ID)
    assert call(request(), context)[0]["statusCode"] == 202


def test_ignored_comes_before_the_site_check(world, context):
    world.configure(NETLIFY_SITE_ID="some-other-site")
    refused(world, request(body=deploy(state="building")), context, 200)


@pytest.mark.parametrize("dist", ["EUNKNOWN123", "", "%00"])
def test_dist_outside_the_setting_answers_403(world, context, dist):
    _, body = refused(world, request(dist=dist), context, 403)
    assert body["status"] == "forbidden"


# -- 202 and what the queue holds ---------------------------------------------------------------


def by_distribution(messages: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for message in messages:
        found.setdefault(message["distribution_id"], []).append(message)
    return found


def test_every_configured_distribution_gets_one_message_with_the_exact_body(world, context):
    response, body = call(request(), context)
    assert response["statusCode"] == 202
    assert response["statusDescription"] == "202 Accepted"
    reference = reference_for()
    items = {item["distribution_id"]: item for item in body["invalidations"]}
    assert set(items) == set(world.distribution_ids)
    queued = by_distribution(world.queued())
    assert set(queued) == set(world.distribution_ids)
    for distribution_id in world.distribution_ids:
        (message,) = queued[distribution_id]
        received_at = message.pop("received_at")
        assert datetime.fromisoformat(received_at).utcoffset() == timedelta(0)
        assert message == {
            "deploy_id": FIXTURE_DEPLOY_ID,
            "site_id": FIXTURE_SITE_ID,
            "event": "deploy_created",
            "context": "production",
            "distribution_id": distribution_id,
            "paths": ["/*"],
            "caller_reference": reference,
        }
        item = items[distribution_id]
        assert item["caller_reference"] == reference
        assert item["paths"] == ["/*"]
        assert isinstance(item["message_id"], str) and item["message_id"]
    assert body["status"] == "queued"
    assert body["deploy_id"] == FIXTURE_DEPLOY_ID
    assert world.invalidation_count() == 0  # the worker invalidates, not the ingest


def test_a_missing_event_header_is_queued_with_a_null_event(world, context):
    event = signed(set_header(load_event("alb_single_value.json"), "x-netlify-event", None))
    assert call(event, context)[0]["statusCode"] == 202
    assert {message["event"] for message in world.queued()} == {None}


def test_dist_parameter_limits_the_messages_to_that_distribution(world, context):
    _, second = world.distribution_ids
    response, body = call(request(dist=second), context)
    assert response["statusCode"] == 202
    assert [item["distribution_id"] for item in body["invalidations"]] == [second]
    assert set(by_distribution(world.queued())) == {second}


def test_dist_parameter_is_percent_decoded(world, context):
    _, second = world.distribution_ids
    encoded = "".join(f"%{ord(ch):02X}" for ch in second)
    event = set_query(signed(load_event("alb_encoded_query.json")), "dist", encoded)
    world.put_secrets(token=ENCODED_FIXTURE_TOKEN)
    assert call(event, context)[0]["statusCode"] == 202
    assert set(by_distribution(world.queued())) == {second}


def test_redelivered_deploy_reuses_the_caller_reference(world, context):
    call(request(), context)
    handler.reset_state()  # even in another container
    call(request(), context)
    first_id = world.distribution_ids[0]
    messages = by_distribution(world.queued())[first_id]
    # Two messages, one reference: CloudFront turns the second into the same invalidation.
    assert len(messages) == 2
    references = {message["caller_reference"] for message in messages}
    assert references == {reference_for()}


def test_another_deploy_gets_another_reference(world, context):
    call(request(), context)
    call(request(body=deploy(id="6566f3c2b9a1d40008a7e1ff")), context)
    first_id = world.distribution_ids[0]
    references = {m["caller_reference"] for m in by_distribution(world.queued())[first_id]}
    assert len(references) == 2


def test_configured_paths_are_normalized_and_change_the_reference(world, context):
    world.configure(INVALIDATION_PATHS="/index.html,/blog/*,/index.html")
    _, body = call(request(), context)
    first_id = world.distribution_ids[0]
    (message,) = by_distribution(world.queued())[first_id]
    assert message["paths"] == ["/blog/*", "/index.html"]
    reference = message["caller_reference"]
    assert reference == reference_for(paths=["/blog/*", "/index.html"])
    assert reference != reference_for()
    assert body["invalidations"][0]["paths"] == ["/blog/*", "/index.html"]
    # The same set in another order is the same reference.
    world.configure(INVALIDATION_PATHS="/blog/*,/index.html")
    _, again = call(request(), context)
    assert again["invalidations"][0]["caller_reference"] == reference


def test_values_copied_from_the_request_are_bounded(world, context):
    long_id, long_site = "d" * 5000, "s" * 5000
    world.configure(NETLIFY_SITE_ID=None)
    response, body = call(request(body=deploy(id=long_id, site_id=long_site)), context)
    assert response["statusCode"] == 202
    assert len(body["deploy_id"]) <= MAX_COPIED_CHARS
    for message in world.queued():
        assert len(message["deploy_id"]) <= MAX_COPIED_CHARS
        assert len(message["site_id"]) <= MAX_COPIED_CHARS
        # The reference still tells this deploy from any other: it hashes the whole id.
        assert message["caller_reference"] == reference_for(deploy(id=long_id, site_id=long_site))


def test_a_long_refused_value_is_not_echoed_whole(world, context):
    _, body = refused(world, request(body=deploy(state="x" * 100_000)), context, 200)
    assert len(body["reason"]) < 400


def test_multi_value_event_gets_a_multi_value_response(world, context):
    response, _ = call(request("alb_multi_value.json"), context)
    assert response["statusCode"] == 202
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert "headers" not in response


def test_multi_value_refusal_also_uses_multi_value_headers(world, context):
    event = request("alb_multi_value.json")
    event["httpMethod"] = "GET"
    response, _ = refused(world, event, context, 405)
    assert response["multiValueHeaders"]["Allow"] == ["POST"]


# -- 500: the unexpected --------------------------------------------------------------------------


def test_unexpected_error_answers_500_with_the_request_id(world, context, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(handler, "invalidation_paths", broken)
    response, body = refused(world, request(), context, 500)
    assert body["request_id"] == context.aws_request_id
    assert "boom" not in response["body"]


@pytest.mark.parametrize("event", [None, [], "text", {"httpMethod": 5, "headers": "x"}])
def test_malformed_event_still_gets_an_alb_response(world, context, event):
    response = handler.handler(event, context)
    assert assert_alb_response(response, False)["status"] == "rejected"
    assert response["statusCode"] == 405
