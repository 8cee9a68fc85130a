"""Every publish reaches the cache: rollbacks and manual publishes, one reference per publish,
and inputs that are not valid text answered as the contract says (not a 500 "unexpected")."""

from __future__ import annotations

import hashlib
import json

import pytest

from function import handler, webhook_settings
from function.webhook_settings import caller_reference, reference_deploy_part
from tests.function.function_testkit import (
    SECRETS_PARAMETER,
    answer_body,
    deploy,
    load_event,
    reference_for,
    request,
    set_header,
    set_query,
    signed,
    with_body,
)

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def notification(event_name: str | None, **deploy_fields) -> dict:
    event = load_event("alb_single_value.json")
    with_body(event, json.dumps(deploy(**deploy_fields)))
    return signed(set_header(event, "x-netlify-event", event_name))


def references(world) -> list[str]:
    first = world.distribution_ids[0]
    return [m["caller_reference"] for m in world.queued() if m["distribution_id"] == first]


def test_a_restored_deploy_is_queued_like_a_new_one(world, context):
    response = handler.handler(notification("deploy_restored"), context)
    assert response["statusCode"] == 202, answer_body(response)
    events = {m["event"] for m in world.queued()}
    assert events == {"deploy_restored"}


@pytest.mark.parametrize("event_name", ["deploy_building", "deploy_failed", "deploy_locked"])
def test_other_events_stay_ignored(world, context, event_name):
    response = handler.handler(notification(event_name), context)
    assert (response["statusCode"], answer_body(response)["status"]) == (200, "ignored")
    assert world.queued_count() == 0


def test_the_same_notification_delivered_twice_gives_one_reference(world, context):
    for _ in range(2):
        assert handler.handler(notification("deploy_restored"), context)["statusCode"] == 202
    assert len(set(references(world))) == 1


def test_restoring_the_same_deploy_twice_gives_two_references(world, context):
    first = notification("deploy_restored", published_at="2026-11-29T08:00:00.000Z")
    second = notification("deploy_restored", published_at="2026-11-29T09:30:00.000Z")
    for event in (first, second):
        assert handler.handler(event, context)["statusCode"] == 202
    found = references(world)
    assert len(found) == 2 and len(set(found)) == 2
    prefix = webhook_settings.reference_prefix(deploy()["id"])
    assert all(reference.startswith(prefix) for reference in found)


def test_the_reference_differs_by_event_and_updated_at(world, context):
    base = reference_for(event="deploy_created")
    assert reference_for(event="deploy_restored") != base
    assert reference_for(deploy(updated_at="2026-11-29T10:00:00.000Z")) != base
    assert reference_for(event=None) != base


def test_the_reference_has_the_documented_form():
    reference = reference_for()
    prefix, digest = reference.rsplit("-", 1)
    assert prefix == f"netlify-{deploy()['id']}"
    assert len(digest) == 16 and int(digest, 16) >= 0


def test_the_reference_is_one_to_one_between_plain_and_hashed_ids():
    # An odd id is hashed; a plain id that looks like a hash can no longer collide with it.
    odd = "deploy id with blanks"
    hashed = reference_deploy_part(odd)
    assert hashed == "h." + hashlib.sha256(odd.encode()).hexdigest()[:32]
    lookalike = "h" + hashlib.sha256(odd.encode()).hexdigest()[:32]  # a legal plain id
    assert reference_deploy_part(lookalike) == lookalike != hashed
    assert caller_reference(odd, ["/*"]) != caller_reference(lookalike, ["/*"])


# -- lone UTF-16 surrogates: the answer the contract gives that input ---------------------------


def test_a_lone_surrogate_in_the_token_value_is_401(world, context):
    event = set_query(request(), "token", "nEt1ify-Hook_T0ken-42\ud800")
    assert handler.handler(event, context)["statusCode"] == 401


def test_a_lone_surrogate_in_the_signature_header_is_401(world, context):
    event = set_header(request(), "x-webhook-signature", "a\udc00.b.c")
    assert handler.handler(event, context)["statusCode"] == 401


def test_a_lone_surrogate_in_the_raw_body_is_401_when_signed_and_400_when_not(world, context):
    event = request()
    event["body"] = '{"id": "x\ud800"}'
    assert handler.handler(event, context)["statusCode"] == 401  # cannot be hashed: unsigned
    world.put_secrets(jws_secret=None)
    response = handler.handler(event, context)
    assert (response["statusCode"], answer_body(response)["status"]) == (400, "rejected")


def test_an_escaped_lone_surrogate_in_the_deploy_is_queued_without_error(world, context):
    world.put_secrets(jws_secret=None)
    body = '{"id": "abc\\ud800", "state": "ready", "context": "production",'
    body += ' "site_id": "4f1b9c2e-8d3a-4e6f-9b7c-2a1d5e8f0c3b", "published_at": "\\udfff"}'
    response = handler.handler(with_body(request(), body), context)
    assert response["statusCode"] == 202, answer_body(response)
    (first, *_) = world.queued()
    assert first["caller_reference"].startswith("netlify-h.")


def test_a_lone_surrogate_in_the_secrets_parameter_is_500_naming_it(world, context):
    world.ssm.put_parameter(
        Name=SECRETS_PARAMETER,
        Type="SecureString",
        Value='{"token": "nEt1ify-Hook_T0ken-42x", "jws_secret": "bad\\udc00"}',
        Overwrite=True,
    )
    handler.reset_state(keep_clients=True)
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert (response["statusCode"], body["variable"]) == (500, "SECRETS_PARAMETER")


def test_a_token_the_program_would_refuse_is_500_naming_the_parameter(world, context):
    world.put_secrets(token="short")
    response = handler.handler(request(), context)
    body = answer_body(response)
    assert (response["statusCode"], body["variable"]) == (500, "SECRETS_PARAMETER")
    assert "16-128" in body["reason"] and "short" not in body["reason"]
