"""The runbook module, section by section, against moto (no network, no real sleeping)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import ClassVar

import jwt
import matplotlib
import pandas as pd
import pytest
from moto.cloudfront.models import cloudfront_backends
from moto.core import DEFAULT_ACCOUNT_ID

from function.webhook_settings import caller_reference, reference_prefix
from runbook_lib.answers import answers_table, explain_answer
from runbook_lib.config import StackOutputs, load_config
from runbook_lib.health import distribution_health
from runbook_lib.history_cost import (
    HISTORY_COLUMNS,
    history,
    history_chart,
    invalidation_history,
    month_start,
    monthly_usage,
    paths_cost_usd,
)
from runbook_lib.invalidate import manual, manual_invalidation, manual_reference, normalized_paths
from runbook_lib.logs import recent_errors, troubleshoot
from runbook_lib.notify import (
    NotificationResult,
    TriggerResult,
    netlify_deploy_payload,
    send_deploy_notification,
    trigger,
)
from runbook_lib.verification import (
    DEPLOY_PREFIX,
    NEWEST,
    REFERENCE,
    WEBHOOK_PREFIX,
    Target,
    find_invalidation,
    is_completed,
    verify,
    wait_for_invalidations,
)

matplotlib.use("Agg")

TOKEN = "Tok3n-abcdefghijklmnopqrstuvwxyz"
JWS = "jws-secret-abcdefghijklmnopqrstuvwxyz012345"


def _count(cloudfront, distribution_id):
    return cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"][
        "Quantity"
    ]


def _flags(cloudfront, distribution_id):
    cloudfront.get_distribution(Id=distribution_id)
    return " | ".join(distribution_health(cloudfront, distribution_id).flags)


def _live_config(**kwargs):
    env = {"NCW_DISTRIBUTION_IDS": "EAAA1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    env.update(kwargs)
    return load_config("dev", environ=env, stack_outputs=StackOutputs(None, "n/a"))


def _moto_config(*distribution_ids: str, **kwargs):
    """A live config for moto's in-process AWS (``mock_aws``): no endpoint, distributions set."""
    env = {"NCW_DISTRIBUTION_IDS": ",".join(distribution_ids), "NCW_STACK": "dev"}
    env.update(kwargs)
    return load_config("dev", environ=env, stack_outputs=StackOutputs(None, "n/a"))


# ---------------------------------------------------------------------------- 2. distribution shape


def test_distribution_shaped_as_designed_has_no_flags(cloudfront, make_distribution):
    distribution_id = make_distribution()
    cloudfront.get_distribution(Id=distribution_id)  # moto: InProgress -> Deployed
    health = distribution_health(cloudfront, distribution_id)
    assert health.flags == [], health.flags
    assert health.enabled and health.status == "Deployed"
    assert health.aliases == ("www.example.com",)
    assert list(health.behaviors["path pattern"]) == ["(default)", "/pdf/*"]
    assert list(health.behaviors["origin kind"]) == ["netlify", "s3"]
    assert set(health.origins["kind"]) == {"netlify", "s3"}


def test_missing_pdf_behavior_is_flagged(cloudfront, make_distribution):
    distribution_id = make_distribution(pdf_domain=None)
    assert "no cache behavior for '/pdf/*'" in _flags(cloudfront, distribution_id)


def test_pdf_behavior_not_on_s3_is_flagged(cloudfront, make_distribution):
    distribution_id = make_distribution(pdf_target="netlify")
    assert "'/pdf/*' points at 'example-site.netlify.app', not an S3 origin" in _flags(
        cloudfront, distribution_id
    )


def test_default_origin_not_netlify_is_flagged(cloudfront, make_distribution):
    distribution_id = make_distribution(default_domain="origin.example.org")
    assert "does not look like Netlify" in _flags(cloudfront, distribution_id)


def test_disabled_distribution_is_flagged(cloudfront, make_distribution):
    assert "disabled" in _flags(cloudfront, make_distribution(enabled=False))


def test_distribution_still_deploying_is_flagged():
    class Stub:
        def get_distribution(self, Id):
            config = {
                "Enabled": True,
                "Origins": {"Items": [{"Id": "n", "DomainName": "a.netlify.app"}]},
                "DefaultCacheBehavior": {"TargetOriginId": "n"},
            }
            return {"Distribution": {"Status": "InProgress", "DistributionConfig": config}}

    assert any("not 'Deployed'" in flag for flag in distribution_health(Stub(), "E1").flags)


def test_unknown_distribution_is_an_error_not_a_crash(cloudfront):
    health = distribution_health(cloudfront, "ENOPE")
    assert "NoSuchDistribution" in health.error and not health.healthy


# ---------------------------------------------------------------------------- 5. trigger


class Recorder(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, bytes]]] = []
    seen: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, payload = type(self).answers.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    Recorder.answers, Recorder.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_payload_is_a_realistic_deploy_object():
    payload = netlify_deploy_payload("site-1")
    assert re.fullmatch(r"[0-9a-f]{24}", payload["id"])
    assert payload["site_id"] == "site-1" and payload["state"] == "ready"
    assert payload["context"] == "production" and payload["published_at"]
    assert "deploy_id" not in payload  # Netlify has no such field: the deploy id is `id`
    for key in ("build_id", "branch", "commit_ref", "url", "ssl_url", "deploy_ssl_url", "title"):
        assert payload[key]
    assert payload["log_access_attributes"]["token"].startswith("dummy-")
    preview = netlify_deploy_payload("site-1", deploy_id="abc", context="deploy-preview")
    assert preview["id"] == "abc" and preview["context"] == "deploy-preview"


def test_sender_signs_exactly_as_netlify_verified_independently(recorder):
    _, base = recorder
    Recorder.answers.append((202, b'{"status": "invalidating", "invalidations": []}'))
    payload = netlify_deploy_payload("site-1")
    result = send_deploy_notification(
        f"{base}/webhooks/netlify?token={TOKEN}", payload, jws_secret=JWS, host="lambda.example.com"
    )
    assert result.status == 202 and result.accepted
    assert result.body == {"status": "invalidating", "invalidations": []}
    request = Recorder.seen[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["path"] == f"/webhooks/netlify?token={TOKEN}"
    assert headers["host"] == "lambda.example.com"
    assert headers["x-netlify-event"] == "deploy_created"
    assert headers["content-type"] == "application/json"
    assert json.loads(request["body"]) == payload
    claims = jwt.decode(headers["x-webhook-signature"], JWS, algorithms=["HS256"], issuer="netlify")
    assert claims["sha256"] == hashlib.sha256(request["body"]).hexdigest()
    assert jwt.get_unverified_header(headers["x-webhook-signature"])["alg"] == "HS256"


def test_unsigned_without_a_secret_and_error_status_is_a_result(recorder):
    _, base = recorder
    Recorder.answers.append((401, b'{"status": "unauthorized", "reason": "bad token"}'))
    result = send_deploy_notification(f"{base}/x?token=wrong", {"id": "d1"}, event="deploy_failed")
    assert result.status == 401 and not result.accepted
    assert result.body["reason"] == "bad token"
    headers = {k.lower() for k in Recorder.seen[0]["headers"]}
    assert "x-webhook-signature" not in headers
    assert Recorder.seen[0]["headers"]["X-Netlify-Event"] == "deploy_failed"


def test_non_json_answer_has_no_body(recorder):
    _, base = recorder
    Recorder.answers.append((502, b"<html>502 Bad Gateway</html>"))
    result = send_deploy_notification(f"{base}/x", {"id": "d1"})
    assert result.status == 502 and result.body is None


def test_payloads_carry_published_at_and_updated_at_like_netlify():
    new = netlify_deploy_payload("site-1")
    assert new["published_at"] and new["updated_at"] and new["created_at"] < new["published_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", new["published_at"])
    rollback = netlify_deploy_payload("site-1", deploy_id="old", restored=True)
    created = datetime.fromisoformat(rollback["created_at"].replace("Z", "+00:00"))
    published = datetime.fromisoformat(rollback["published_at"].replace("Z", "+00:00"))
    assert published - created > timedelta(days=1)  # an old deploy, published again now


def _no_send(*args, **kwargs):
    raise AssertionError("must not send")


def test_the_trigger_is_read_only_by_default():
    config = _live_config(NCW_WEBHOOK_URL="http://h/x?token=t")
    newest = trigger(config, send=_no_send)
    assert not newest.sent and newest.mode == "newest" and newest.deploy_id is None
    assert newest.outcome().verdict == "SKIPPED" and "send_test_notification" in newest.message
    given = trigger(config, "d" * 24, notification_status=202, send=_no_send)
    assert given.deploy_id == "d" * 24 and not given.sent and given.mode == "deploy"
    assert given.outcome().verdict == "PASS" and given.refused is None
    unknown = trigger(config, "d" * 24, notification_status=0, send=_no_send)
    assert unknown.caller_status is None and unknown.refused is None


def test_trigger_sends_a_signed_notification_when_asked_and_masks_the_token():
    seen = {}

    def send(url, payload, jws_secret=None, host=None, event=None):
        seen.update(url=url, payload=payload, jws_secret=jws_secret, host=host, event=event)
        return NotificationResult(200, {"status": "ignored", "reason": "context"}, {})

    config = _live_config(
        NCW_WEBHOOK_URL=f"http://127.0.0.1:9/x?token={TOKEN}",
        NCW_JWS_SECRET=JWS,
        NCW_WEBHOOK_HOST="lambda.example.com",
        NCW_NETLIFY_SITE_ID="site-42",
    )
    outcome = trigger(config, send_test_notification=True, event="deploy_restored", send=send)
    assert outcome.sent and outcome.signed and outcome.event == "deploy_restored"
    assert seen["payload"]["site_id"] == "site-42" and seen["payload"]["id"] == outcome.deploy_id
    assert seen["jws_secret"] == JWS and seen["host"] == "lambda.example.com"
    assert seen["event"] == "deploy_restored"
    text = outcome.markdown()
    assert TOKEN not in text and "200 ignored" in text
    assert outcome.outcome().verdict == "WARN" and "queued nothing" in (outcome.refused or "")


def test_a_test_notification_for_one_distribution_names_it_in_the_url():
    seen = {}

    def send(url, payload, **kwargs):
        seen["url"] = url
        return NotificationResult(202, {"status": "queued", "invalidations": []}, {})

    env = {"NCW_WEBHOOK_URL": f"http://127.0.0.1:9/x?token={TOKEN}"}
    config = load_config(
        "dev",
        distribution_id="EBBB2",
        environ={"NCW_DISTRIBUTION_IDS": "EAAA1,EBBB2", "AWS_ENDPOINT_URL": "http://e", **env},
        stack_outputs=StackOutputs(None, "n/a"),
    )
    trigger(config, "given-deploy", send_test_notification=True, send=send)
    assert seen["url"].endswith(f"?token={TOKEN}&dist=EBBB2")


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_a_refused_notification_fails_the_trigger_with_its_reason(status):
    config = _live_config(NCW_WEBHOOK_URL="http://127.0.0.1:9/x?token=secretsecretsecret")
    outcome = trigger(
        config,
        send_test_notification=True,
        send=lambda *a, **k: NotificationResult(status, {"status": "x"}, {}),
    )
    assert outcome.sent and not outcome.accepted
    assert f"HTTP {status}" in (outcome.refused or "")
    assert outcome.outcome().verdict == "FAIL"
    caller = trigger(config, "d1", notification_status=status, send=_no_send)
    assert caller.refused and caller.outcome().verdict == "FAIL"


def test_trigger_reports_an_unreachable_webhook():
    config = _live_config(NCW_WEBHOOK_URL="http://127.0.0.1:9/x?token=secretsecretsecret")
    outcome = trigger(
        config,
        send_test_notification=True,
        send=lambda *a, **k: (_ for _ in ()).throw(OSError("refused")),
    )
    assert outcome.sent and outcome.result is None and "no answer" in (outcome.error or "")
    assert outcome.refused and outcome.outcome().verdict == "FAIL"


def test_an_unknown_test_event_is_refused_before_sending():
    config = _live_config(NCW_WEBHOOK_URL="http://127.0.0.1:9/x?token=t")
    outcome = trigger(config, send_test_notification=True, event="deploy_failed", send=_no_send)
    assert not outcome.sent and "deploy_restored" in (outcome.error or "")
    assert outcome.outcome().verdict == "FAIL"


# ---------------------------------------------------------------------------- 6. verify


def _wait(cloudfront, targets, clock, **options):
    """The wait loop on ``clock``: no real sleeping, no progress line."""
    return wait_for_invalidations(
        cloudfront, targets, clock=clock, sleep=clock.sleep, progress=False, **options
    )


def _reference(deploy: str, published_at: str = "2026-11-28T10:00:00.000Z") -> str:
    return caller_reference(
        deploy, ["/*"], event="deploy_created", published_at=published_at, updated_at=published_at
    )


def test_finds_the_function_invalidation_by_its_exact_caller_reference(
    cloudfront, make_distribution, invalidate
):
    distribution_id = make_distribution()
    deploy = "5ebc34bf4fea0b01f02efa3a"
    invalidate(distribution_id, ["/*"], _reference("another0deploy0id0000000"))
    wanted = invalidate(distribution_id, ["/*"], _reference(deploy))
    invalidate(distribution_id, ["/*"], _reference(deploy, "2026-11-29T10:00:00.000Z"))  # later
    invalidate(distribution_id, ["/a"], "runbook-manual-x")
    found = find_invalidation(cloudfront, distribution_id, _reference(deploy))
    assert found and found.invalidation_id == wanted and found.matched_by == REFERENCE
    assert found.paths == ("/*",)


def test_without_the_reference_the_deploy_newest_publish_is_found_by_its_prefix(
    cloudfront, make_distribution, invalidate
):
    distribution_id = make_distribution()
    deploy = "5ebc34bf4fea0b01f02efa3a"
    invalidate(distribution_id, ["/*"], _reference(deploy))
    restored = invalidate(distribution_id, ["/*"], _reference(deploy, "2026-11-30T08:00:00.000Z"))
    invalidate(distribution_id, ["/*"], _reference("other0deploy"))
    found = find_invalidation(cloudfront, distribution_id, prefix=reference_prefix(deploy))
    assert found and found.invalidation_id == restored and found.matched_by == DEPLOY_PREFIX


def test_the_newest_webhook_invalidation_skips_the_operator_ones(
    cloudfront, make_distribution, invalidate
):
    distribution_id = make_distribution()
    webhook = invalidate(distribution_id, ["/*"], _reference("d1"))
    invalidate(distribution_id, ["/a"], "runbook-manual-x")
    found = find_invalidation(cloudfront, distribution_id, prefix=WEBHOOK_PREFIX)
    assert found and found.invalidation_id == webhook and found.matched_by == NEWEST


def test_wait_follows_in_progress_to_completed_without_sleeping(
    cloudfront, make_distribution, invalidate, set_status, fake_clock
):
    distribution_id = make_distribution()
    reference = _reference("a" * 24)
    made = invalidate(distribution_id, ["/*"], reference)
    set_status(distribution_id, made, "InProgress")
    fake_clock.on_sleep = lambda n: n == 3 and set_status(distribution_id, made, "Completed")
    started = time.monotonic()
    [result] = _wait(
        cloudfront,
        [Target(distribution_id, reference, reference_prefix("a" * 24))],
        fake_clock,
        timeout_s=300,
        poll_interval_s=20,
    )
    assert time.monotonic() - started < 5  # no real sleeping
    assert result.completed and not result.timed_out and result.verdict == "PASS"
    assert result.invalidation_id == made and result.status == "Completed"
    assert fake_clock.sleeps == [20, 20, 20] and result.elapsed_s == 60 and result.polls == 4


def test_every_distribution_is_followed_with_its_own_status_and_advice(
    cloudfront, make_distribution, invalidate, set_status, fake_clock
):
    fast, slow, missing = make_distribution(), make_distribution(), make_distribution()
    deploy = "c" * 24
    reference = _reference(deploy)
    quick = invalidate(fast, ["/*"], reference)
    late = invalidate(slow, ["/*"], reference)
    set_status(slow, late, "InProgress")
    fake_clock.on_sleep = lambda n: n == 2 and set_status(slow, late, "Completed")
    targets = [Target(d, reference, reference_prefix(deploy)) for d in (fast, slow, missing)]
    results = _wait(
        cloudfront, targets, fake_clock, deploy_id=deploy, timeout_s=60, poll_interval_s=10
    )
    by_id = {result.distribution_id: result for result in results}
    assert by_id[fast].completed and by_id[fast].polls == 1 and by_id[fast].elapsed_s == 0
    assert by_id[fast].invalidation_id == quick
    assert by_id[slow].completed and by_id[slow].polls == 3 and by_id[slow].elapsed_s == 20
    assert by_id[missing].timed_out and not by_id[missing].found
    assert by_id[missing].verdict == "FAIL" and "section 3" in by_id[missing].guidance
    assert by_id[missing].elapsed_s == 60 and sum(fake_clock.sleeps) == 60


def test_wait_stops_at_the_timeout_with_guidance(
    cloudfront, make_distribution, invalidate, set_status, fake_clock
):
    distribution_id = make_distribution()
    reference = _reference("b" * 24)
    made = invalidate(distribution_id, ["/*"], reference)
    set_status(distribution_id, made, "InProgress")
    [result] = _wait(
        cloudfront,
        [Target(distribution_id, reference)],
        fake_clock,
        timeout_s=50,
        poll_interval_s=20,
    )
    assert result.timed_out and result.found and not result.completed
    assert result.status == "InProgress" and result.verdict == "WARN"
    assert fake_clock.sleeps == [20, 20, 10]  # never sleeps past the deadline
    assert result.elapsed_s == 50
    assert "Re-run" in result.guidance


@pytest.mark.parametrize("status", ["Completed", "COMPLETED", "completed"])
def test_status_is_compared_case_insensitively(status):
    assert is_completed(status)
    assert not is_completed("InProgress")


class Counting:
    """A boto3 client that counts its calls and, with a fake clock, makes each one take time."""

    def __init__(self, client, clock=None, seconds_per_call: float = 0.0) -> None:
        self.client, self.clock, self.seconds = client, clock, seconds_per_call
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        method = getattr(self.client, name)

        def call(**kwargs):
            self.calls.append((name, kwargs))
            if self.clock is not None:
                self.clock.now += self.seconds
            return method(**kwargs)

        return call

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)


def test_a_slow_scan_never_carries_the_wait_past_its_deadline(
    cloudfront, make_distribution, invalidate, fake_clock
):
    distribution_id = make_distribution()
    for index in range(5):
        invalidate(distribution_id, ["/*"], f"other-{index}")
    slow = Counting(cloudfront, fake_clock, seconds_per_call=3)  # a scan: 1 list + 5 reads
    start = fake_clock.now
    woke_at: list[float] = []
    fake_clock.on_sleep = lambda sleeps: woke_at.append(fake_clock.now)
    [result] = _wait(
        slow,
        [Target(distribution_id, _reference("f" * 24))],
        fake_clock,
        timeout_s=30,
        poll_interval_s=10,
    )
    one_poll_of_work = 6 * 3
    assert result.timed_out and not result.found
    assert result.elapsed_s == fake_clock.now - start  # measured after the last calls
    assert result.elapsed_s <= 30 + one_poll_of_work
    assert sum(fake_clock.sleeps) + 3 * len(slow.calls) == result.elapsed_s
    assert woke_at and all(when <= start + 30 for when in woke_at)  # no sleep past it


def test_each_invalidation_is_read_once_while_the_wait_looks_for_it(
    cloudfront, make_distribution, invalidate, fake_clock
):
    distribution_id = make_distribution()
    reference = _reference("ab" * 12)
    for index in range(3):
        invalidate(distribution_id, ["/*"], f"other-{index}")
    counted = Counting(cloudfront)

    def later(sleeps: int) -> None:
        if sleeps == 1:
            invalidate(distribution_id, ["/x"], "other-late")
        if sleeps == 3:
            invalidate(distribution_id, ["/*"], reference)

    fake_clock.on_sleep = later
    [result] = _wait(
        counted, [Target(distribution_id, reference)], fake_clock, timeout_s=300, poll_interval_s=10
    )
    assert result.completed and result.polls == 4 and result.matched_by == REFERENCE
    read = [kwargs["Id"] for name, kwargs in counted.calls if name == "get_invalidation"]
    assert len(read) == len(set(read)) == _count(cloudfront, distribution_id) == 5
    assert counted.count("list_invalidations") == 4


class Unreachable:
    """Stands in for AwsClients when AWS refuses (no credentials, no permission); counts calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def cloudfront(self):
        from botocore.exceptions import NoCredentialsError

        calls = self.calls

        class Client:
            def __getattr__(self, name):
                def fail(**kwargs):
                    calls.append(name)
                    raise NoCredentialsError()

                return fail

        return Client()


def test_a_refused_trigger_skips_the_wait_without_a_single_poll():
    config = _live_config(NCW_DISTRIBUTION_IDS="EAAA1,EBBB2")
    refused = TriggerResult(
        deploy_id="d" * 24,
        sent=True,
        mode="test notification",
        result=NotificationResult(401, {"status": "unauthorized"}, {}),
    )
    aws = Unreachable()
    verified = verify(config, aws, refused, wait_timeout_s=300, poll_interval_s=10, progress=False)
    assert [r.distribution_id for r in verified.results] == ["EAAA1", "EBBB2"]
    for result in verified.results:
        assert result.polls == 0 and result.elapsed_s == 0
        assert result.skipped and "HTTP 401" in result.skipped and "not waiting" in result.skipped
    assert aws.calls == []  # CloudFront was not asked anything
    assert verified.outcome().verdict == "SKIPPED"


def test_without_a_deploy_the_newest_webhook_invalidation_is_verified_without_waiting(
    cloudfront, make_distribution, invalidate, fake_clock
):
    with_one, without = make_distribution(), make_distribution()
    made = invalidate(with_one, ["/*"], _reference("d" * 24))
    invalidate(without, ["/a"], "runbook-manual-1")
    config = _moto_config(with_one, without)
    newest = trigger(config, send=_no_send)
    verified = verify(
        config,
        SimpleNamespace(cloudfront=cloudfront),
        newest,
        wait_timeout_s=300,
        clock=fake_clock,
        sleep=fake_clock.sleep,
        progress=False,
    )
    found, nothing = verified.results
    assert found.completed and found.invalidation_id == made and found.matched_by == NEWEST
    assert not nothing.found and nothing.verdict == "WARN" and "no invalidation" in nothing.guidance
    assert fake_clock.sleeps == []  # nothing awaited: an existing invalidation is followed only
    assert verified.outcome().verdict == "WARN"


def test_the_ingest_answer_gives_each_distribution_its_exact_reference(
    cloudfront, make_distribution, invalidate, fake_clock
):
    first, second = make_distribution(), make_distribution()
    deploy = "e" * 24
    older = _reference(deploy)  # an earlier publish of the same deploy: not this one
    newer = _reference(deploy, "2026-11-30T00:00:00.000Z")
    invalidate(first, ["/*"], newer)
    invalidate(first, ["/*"], older)  # listed first (newest), but not the queued reference
    made = invalidate(second, ["/*"], newer)
    answer = {
        "status": "queued",
        "invalidations": [
            {"distribution_id": first, "caller_reference": newer},
            {"distribution_id": second, "caller_reference": newer},
        ],
    }
    sent = TriggerResult(deploy, True, "test notification", NotificationResult(202, answer, {}))
    verified = verify(
        _moto_config(first, second),
        SimpleNamespace(cloudfront=cloudfront),
        sent,
        clock=fake_clock,
        sleep=fake_clock.sleep,
        progress=False,
    )
    assert [r.caller_reference for r in verified.results] == [newer, newer]
    assert verified.results[1].invalidation_id == made
    assert all(r.matched_by == REFERENCE for r in verified.results)
    assert verified.outcome().verdict == "PASS"


def test_aws_failures_are_findings_not_crashes():
    config = _live_config()
    given = trigger(config, "d" * 24, send=_no_send)
    verified = verify(config, Unreachable(), given, wait_timeout_s=1, progress=False)
    [result] = verified.results
    assert "Unable to locate credentials" in (result.error or "") and not result.completed
    assert result.verdict == "WARN" and "cannot check CloudFront" in result.advice()
    past = history(config, Unreachable())
    assert past.error and past.usage is None and past.table.empty
    health = distribution_health(Unreachable().cloudfront, "E1")
    assert health.error and "cannot read the distribution" in health.error


def test_the_progress_line_is_one_output_updated_in_place(monkeypatch):
    """In a kernel the wait shows one output, replaced on every refresh: the executed notebook
    keeps its last state only (one line), not one line per refresh."""
    from runbook_lib import display

    shown: list[dict] = []
    updates: list[dict] = []

    class Handle:
        def update(self, bundle, raw=True):
            updates.append(bundle)

    monkeypatch.setattr(display, "in_notebook", lambda: True)
    monkeypatch.setattr(display, "_display", lambda bundle, **kw: shown.append(bundle) or Handle())
    line = display.ProgressLine()
    line.write("\rwaited 0 of 30 s, completed 0/2 |    |")
    line.write("\rwaited 10 of 30 s, completed 1/2 |##  |")
    line.write("\n")
    assert len(shown) == 1
    assert [u["text/plain"] for u in updates] == [
        "waited 0 of 30 s, completed 0/2 |    |",
        "waited 10 of 30 s, completed 1/2 |##  |",
    ]
    assert all("\r" not in u["text/plain"] and "\n" not in u["text/plain"] for u in updates)


# ---------------------------------------------------------------------------- 7. history


def test_history_lists_invalidations_newest_first(cloudfront, make_distribution, invalidate):
    distribution_id = make_distribution()
    first = invalidate(distribution_id, ["/*"], _reference("e" * 24))
    second = invalidate(distribution_id, ["/a", "/b"], "runbook-manual-x")
    table = invalidation_history(cloudfront, [distribution_id], limit=10)
    assert list(table["invalidation_id"]) == [second, first]
    assert list(table["path_count"]) == [2, 1]  # "/*" counts as one path
    assert list(table["origin"]) == ["runbook (manual)", "netlify deploy"]
    assert str(table["created"].dt.tz) == "UTC"


def test_history_limit_bounds_the_table(cloudfront, make_distribution, invalidate):
    distribution_id = make_distribution()
    for index in range(5):
        invalidate(distribution_id, ["/*"], f"ref-{index}")
    assert len(invalidation_history(cloudfront, [distribution_id], limit=3)) == 3


def _backdate(distribution_id: str, invalidation_id: str, when: datetime) -> None:
    backend = cloudfront_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for item in backend.invalidations[distribution_id]:
        if item.id == invalidation_id:
            item.create_time = when.astimezone(UTC).replace(tzinfo=None)  # moto: naive UTC
            return
    raise KeyError(invalidation_id)


def test_the_month_counts_every_invalidation_not_only_the_table(
    cloudfront, make_distribution, invalidate
):
    distribution_id = make_distribution()
    for index in range(130):  # more than the table's limit and than one page of 100
        invalidate(distribution_id, ["/a", "/b"] if index % 2 else ["/*"], f"ref-{index}")
    # CloudFront lists newest first: the older ones come last
    last_month = month_start(datetime.now(UTC)) - timedelta(days=2)
    for index in range(5):
        made = invalidate(distribution_id, ["/old"], f"old-{index}")
        _backdate(distribution_id, made, last_month)
    counted = Counting(cloudfront)
    config = _moto_config(distribution_id)
    past = history(config, SimpleNamespace(cloudfront=counted), limit=25)
    assert len(past.table) == 25
    assert past.usage and past.usage.invalidations == 130
    assert past.usage.paths == 65 * 1 + 65 * 2
    assert "per AWS account" in past.usage.note and "lower bound" in past.usage.note
    read = [kwargs["Id"] for name, kwargs in counted.calls if name == "get_invalidation"]
    assert len(read) == len(set(read)) == 130  # table and month share the reads
    assert len(past.charted) == 130
    assert past.outcome().verdict == "PASS"


@pytest.mark.parametrize(
    ("paths", "cost"), [(0, 0.0), (1000, 0.0), (1001, 0.005), (1200, 1.0), (3000, 10.0)]
)
def test_cost_is_free_up_to_1000_paths_then_half_a_cent(paths, cost):
    assert paths_cost_usd(paths) == pytest.approx(cost)


def _history(rows):
    frame = pd.DataFrame(rows, columns=["created", "path_count"])
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    for column in HISTORY_COLUMNS:
        if column not in frame:
            frame[column] = "x"
    return frame[HISTORY_COLUMNS]


def test_monthly_usage_counts_only_this_month():
    frame = _history(
        [
            ("2026-11-02T10:00:00Z", 900),
            ("2026-11-20T10:00:00Z", 300),
            ("2026-10-31T23:59:00Z", 5000),  # last month: not this month's bill
        ]
    )
    usage = monthly_usage(frame, now=datetime(2026, 11, 28, tzinfo=UTC))
    assert (usage.month, usage.invalidations, usage.paths) == ("2026-11", 2, 1200)
    assert usage.billable_paths == 200 and usage.estimated_cost_usd == pytest.approx(1.0)
    assert "per AWS account" in usage.note


def _visible_fraction(axis, bar) -> float:
    """How much of the axis' height a bar covers on screen (0 to 1), whatever the scale."""
    to_axes = axis.transData + axis.transAxes.inverted()
    (_x0, low), (_x1, high) = to_axes.transform(
        [(bar.get_x(), bar.get_y()), (bar.get_x(), bar.get_y() + bar.get_height())]
    )
    return high - low


def test_the_paths_chart_shows_a_single_path_as_a_visible_bar():
    frame = _history([("2026-11-02T10:00:00Z", 1), ("2026-10-15T10:00:00Z", 800)])
    figure = history_chart(frame, now=datetime(2026, 11, 28, tzinfo=UTC))
    per_day, per_month = figure.axes
    assert sum(bar.get_height() for bar in per_day.patches) == 1  # October is beyond 30 days
    assert per_month.get_yscale() == "log"
    october, november = per_month.patches
    assert november.get_y() + november.get_height() == pytest.approx(1)
    assert _visible_fraction(per_month, november) > 0.05  # a bar, not a hairline
    assert _visible_fraction(per_month, october) > _visible_fraction(per_month, november)
    # Each month's figure and its share of the free 1,000 are printed on the bar.
    assert [text.get_text() for text in per_month.texts] == ["800 (80.0%)", "1 (0.1%)"]
    assert any(line.get_ydata()[0] == 1000 for line in per_month.get_lines())
    empty = history_chart(_history([]))
    assert "no invalidations yet" in empty.axes[0].texts[0].get_text()


# ---------------------------------------------------------------------------- 8. manual


def test_manual_invalidation_is_off_by_default_and_sends_nothing(cloudfront, make_distribution):
    distribution_id = make_distribution()
    result = manual_invalidation(cloudfront, [distribution_id], ["/index.html", "/pdf/*"])
    assert not result.created and not result.problems and not result.enabled
    assert result.request and result.request["InvalidationBatch"]["Paths"] == {
        "Quantity": 2,
        "Items": ["/index.html", "/pdf/*"],
    }
    assert "SKIPPED" in result.markdown() and "invalidate_paths = True" in result.markdown()
    assert result.outcome().verdict == "SKIPPED"
    assert _count(cloudfront, distribution_id) == 0


def test_manual_paths_are_normalized_like_the_function_batch():
    assert normalized_paths("/b, /a,/b ,, /a") == ("/a", "/b")  # one string, like papermill -p
    assert normalized_paths(["/about/index.html"]) == ("/about/index.html",)
    assert normalized_paths("/about/index.html") == ("/about/index.html",)  # not 17 paths


def test_manual_paths_are_validated_like_the_function(cloudfront, make_distribution):
    distribution_id = make_distribution()
    result = manual_invalidation(
        cloudfront,
        [distribution_id],
        ["index.html", "/a*/b", "/ok", "/with space"],
        enabled=True,
    )
    assert len(result.problems) == 3 and not result.created
    assert any("must start with '/'" in problem for problem in result.problems)
    assert any("only as its last character" in problem for problem in result.problems)
    assert result.outcome().verdict == "FAIL"
    assert _count(cloudfront, distribution_id) == 0
    assert manual_invalidation(cloudfront, [distribution_id], []).problems
    wildcards = [f"/w{index}/*" for index in range(16)]
    too_many = manual_invalidation(cloudfront, [distribution_id], wildcards, enabled=True)
    assert any("16 wildcard paths" in problem for problem in too_many.problems)
    assert _count(cloudfront, distribution_id) == 0


def test_manual_invalidation_reaches_every_distribution_when_switched_on(
    cloudfront, make_distribution
):
    first, second = make_distribution(), make_distribution()
    result = manual_invalidation(
        cloudfront, [first, second], "/index.html, /index.html, /about/", enabled=True
    )
    assert result.created and len(result.invalidation_ids) == 2
    assert result.given == 3 and result.paths == ("/about/", "/index.html")
    assert "1 repeat(s) dropped" in result.markdown()
    for distribution_id in (first, second):
        [item] = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"][
            "Items"
        ]
        batch = cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])[
            "Invalidation"
        ]["InvalidationBatch"]
        assert batch["Paths"]["Items"] == ["/about/", "/index.html"]
        assert batch["CallerReference"].startswith("runbook-manual-")
    assert result.outcome().verdict == "PASS"


def test_manual_invalidation_of_one_named_distribution(cloudfront, make_distribution):
    first, second = make_distribution(), make_distribution()
    env = {"NCW_DISTRIBUTION_IDS": f"{first},{second}"}
    config = load_config(
        "dev", distribution_id=second, environ=env, stack_outputs=StackOutputs(None, "n/a")
    )
    result = manual(config, SimpleNamespace(cloudfront=cloudfront), "/x", enabled=True)
    assert result.distribution_ids == (second,) and result.created
    assert (_count(cloudfront, first), _count(cloudfront, second)) == (0, 1)


def test_manual_reference_is_stable_within_a_minute():
    now = datetime(2026, 11, 28, 12, 30, 5, tzinfo=UTC)
    later = datetime(2026, 11, 28, 12, 30, 55, tzinfo=UTC)
    assert manual_reference(["/b", "/a"], now) == manual_reference(["/a", "/b"], later)
    assert manual_reference(["/a"], now) != manual_reference(["/a", "/b"], now)


# ---------------------------------------------------------------------------- 9. troubleshooting


def _put_logs(logs, group: str, messages: list[str], *, minutes_ago: float = 0) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    stream = f"s{len(messages)}-{minutes_ago}"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now_ms = int((time.time() - minutes_ago * 60) * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": now_ms - 1000 * (len(messages) - i), "message": m}
            for i, m in enumerate(messages)
        ],
    )


def test_recent_errors_are_the_error_records_with_secrets_masked(logs):
    group = "/aws/lambda/ncw-dev"
    messages = [
        json.dumps({"level": "INFO", "message": "invalidating", "deploy_id": "d1"}),
        json.dumps(
            {
                "level": "ERROR",
                "message": "CreateInvalidation failed for url ?token=abcdefghijklmnop",
                "distribution_id": "E1",
                "outcome": "AccessDenied",
                "requestId": "req-1",
            }
        ),
        "[ERROR]\t2026-11-28T10:00:00.000Z\treq-2\tsettings: DISTRIBUTION_IDS: required",
        "2026-11-28T10:00:00.000Z req-3 Task timed out after 10.01 seconds",
        "START RequestId: req-4 Version: $LATEST",
    ]
    _put_logs(logs, group, messages)
    result = recent_errors(logs, group)
    assert len(result.table) == 3
    assert set(result.table["request_id"]) >= {"req-1", "req-2"}
    assert "abcdefghijklmnop" not in result.table.to_string()
    row = result.table[result.table["request_id"] == "req-1"].iloc[0]
    assert "AccessDenied" in row["details"]
    assert "3 error record(s)" in result.markdown() and result.verdict == "WARN"


def test_missing_log_group_is_explained(logs):
    result = recent_errors(logs, "/aws/lambda/never-ran")
    assert result.table.empty and "does not exist" in result.message


def test_troubleshooting_reads_the_window_and_finds_a_deploy_and_a_request(logs):
    ingest, worker = "/aws/lambda/ncw-dev", "/aws/lambda/ncw-dev-worker"
    _put_logs(
        logs,
        ingest,
        [
            json.dumps(
                {"level": "INFO", "message": "queued", "deploy_id": "dep-1", "requestId": "r-9"}
            ),
            json.dumps({"level": "ERROR", "message": "boom", "requestId": "r-9"}),
        ],
    )
    _put_logs(logs, worker, [json.dumps({"level": "INFO", "message": "invalidated dep-1"})])
    _put_logs(logs, ingest, [json.dumps({"level": "ERROR", "message": "old"})], minutes_ago=180)
    config = _moto_config("EAAA1", NCW_LOG_GROUP=ingest, NCW_WORKER_LOG_GROUP=worker)
    found = troubleshoot(config, None, window_hours=1, deploy_id="dep-1", request_id="r-9")
    [ingest_errors, worker_errors] = found.errors
    assert len(ingest_errors.table) == 1  # the 3-hour-old error is outside the 1-hour window
    assert worker_errors.table.empty
    assert found.found == {"dep-1": 2, "r-9": 2}
    assert set(found.matches["function"]) == {"ingest", "worker"}
    assert found.outcome().verdict == "WARN"  # the ingest logged an error in the window
    wider = troubleshoot(config, None, window_hours=6)
    assert len(wider.errors[0].table) == 2
    nothing = troubleshoot(config, None, window_hours=1, deploy_id="never-notified")
    assert any("never-notified" in reason for reason in nothing.outcome().reasons)


def test_answers_table_explains_every_answer():
    answers = set(answers_table()["answer"])
    for status in ("401", "403", "404", "405", "413", "400", "500", "503"):
        assert status in answers
    assert {"200 ignored", "202 queued", "502 (from the ALB)"} <= answers
    assert "worker" in explain_answer(202, {"status": "queued"})
    assert "JWS" in explain_answer(401)
    assert "function URL" in explain_answer(404)
    assert "not a deploy we act on" in explain_answer(200, {"status": "ignored"})
