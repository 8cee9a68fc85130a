"""The runbook module, section by section, against moto (no network, no real sleeping)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
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

from function.webhook_settings import caller_reference
from runbook_lib import config as rb_config
from runbook_lib.answers import answers_table, explain_answer
from runbook_lib.config import (
    ENVIRONMENT,
    NO_PULUMI,
    PARAMETER,
    PULUMI,
    STACK_FILE,
    StackOutputs,
    load_config,
    read_stack_outputs,
)
from runbook_lib.health import distribution_health, distributions_health
from runbook_lib.history_cost import (
    HISTORY_COLUMNS,
    history,
    history_chart,
    invalidation_history,
    month_start,
    monthly_usage,
    paths_cost_usd,
)
from runbook_lib.invalidate import manual_invalidation, manual_reference
from runbook_lib.logs import recent_errors
from runbook_lib.masking import mask_url
from runbook_lib.notify import (
    NotificationResult,
    netlify_deploy_payload,
    send_deploy_notification,
    trigger,
)
from runbook_lib.verification import (
    find_invalidation,
    is_completed,
    reference_prefix,
    verify,
    wait_for_invalidation,
)
from runbook_lib.where import where_am_i

matplotlib.use("Agg")

TOKEN = "Tok3n-abcdefghijklmnopqrstuvwxyz"
JWS = "jws-secret-abcdefghijklmnopqrstuvwxyz012345"


# ---------------------------------------------------------------------------- configuration


def test_config_from_environment_is_live_and_names_its_sources():
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5555",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "NCW_WEBHOOK_URL": f"http://127.0.0.1:8080/webhooks/netlify?token={TOKEN}",
        "NCW_WEBHOOK_HOST": "lambda.example.com",
        "NCW_JWS_SECRET": JWS,
        "NCW_DISTRIBUTION_IDS": "EAAA1, EBBB2",
        "NCW_FUNCTION_NAME": "ncw-dev",
    }
    config = load_config(
        "dev", environ=env, stack_outputs=StackOutputs(None, "pulumi CLI not on PATH")
    )
    assert config.live
    assert config.distribution_ids == ("EAAA1", "EBBB2")
    assert config.distribution_id == "EAAA1"
    assert config.region == "eu-west-1"
    assert config.log_group == "/aws/lambda/ncw-dev"
    assert config.sources["webhook_url"] == ENVIRONMENT
    assert config.sources["invalidation_paths"] == STACK_FILE  # Pulumi.dev.yaml
    assert TOKEN not in repr(config) and JWS not in repr(config)


def test_parameters_win_over_environment():
    env = {"NCW_DISTRIBUTION_IDS": "EAAA1,EBBB2", "NCW_WEBHOOK_URL": "http://a/x?token=1"}
    config = load_config(
        "dev",
        region="ap-south-1",
        webhook_url="http://b/y?token=2",
        distribution_id="EBBB2",
        environ=env,
        stack_outputs=StackOutputs(None, "n/a"),
    )
    assert config.webhook_url == "http://b/y?token=2"
    assert config.sources["webhook_url"] == PARAMETER
    assert config.distribution_id == "EBBB2"
    assert config.region == "ap-south-1"


def test_stack_outputs_are_used_when_the_pulumi_cli_answers():
    outputs = {
        "webhook_url": f"https://lambda.example.com/webhooks/netlify?token={TOKEN}",
        "netlify_hook": {
            "type": "url",
            "event": "deploy_created",
            "data": {"url": "https://lambda.example.com/x", "signature_secret": JWS},
        },
        "distribution_ids": ["EOUT1"],
        "function_name": "fn",
        "log_group_name": "/aws/lambda/fn-group",
        "secrets_parameter_name": "/ncw/dev/secrets",
    }
    calls = []

    def run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout=json.dumps(outputs), stderr="")

    read = read_stack_outputs("prod", which=lambda name: "/usr/bin/pulumi", run=run)
    config = load_config("prod", environ={}, stack_outputs=read)
    assert calls == [
        ["/usr/bin/pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "prod"]
    ]
    assert config.live and config.source_summary() == PULUMI
    assert config.distribution_ids == ("EOUT1",)
    assert config.jws_secret == JWS
    assert config.log_group == "/aws/lambda/fn-group"
    assert config.secrets_parameter == "/ncw/dev/secrets"


def test_a_local_endpoint_never_mixes_with_the_real_stack_outputs(monkeypatch):
    monkeypatch.setattr(rb_config.shutil, "which", lambda name: "/usr/bin/pulumi")
    monkeypatch.setattr(
        rb_config.subprocess, "run", lambda *a, **k: pytest.fail("pulumi was called")
    )
    config = load_config("dev", aws_endpoint_url="http://127.0.0.1:5000", environ={})
    assert config.aws_endpoint_url == "http://127.0.0.1:5000"
    assert "AWS_ENDPOINT_URL is set" in config.pulumi_note


def test_missing_pulumi_cli_is_reported_not_fatal():
    read = read_stack_outputs("dev", which=lambda name: None)
    assert read.outputs is None and "not on PATH" in read.note


@pytest.fixture
def fake_pulumi_on_path(tmp_path, monkeypatch):
    """A ``pulumi`` first on PATH that leaves a mark and prints a stack's outputs."""
    mark = tmp_path / "pulumi-ran"
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir()
    outputs = json.dumps({"webhook_url": f"https://real.example.com/x?token={TOKEN}"})
    script.write_text(f"#!/bin/sh\ntouch '{mark}'\necho '{outputs}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    monkeypatch.delenv(NO_PULUMI, raising=False)
    return mark


def test_the_opt_out_variable_keeps_a_pulumi_on_path_from_running(fake_pulumi_on_path, monkeypatch):
    ran = read_stack_outputs("dev")
    assert ran.outputs and fake_pulumi_on_path.exists()  # the fake is found and runs...
    fake_pulumi_on_path.unlink()
    monkeypatch.setenv(NO_PULUMI, "1")
    read = read_stack_outputs("dev")
    assert read.outputs is None and NO_PULUMI in read.note
    assert not fake_pulumi_on_path.exists()  # ...but not with the opt-out set
    config = load_config("dev", environ={NO_PULUMI: "1"})
    assert not config.live and not config.webhook_url and not fake_pulumi_on_path.exists()


def test_a_token_less_webhook_url_parameter_takes_the_token_from_the_environment():
    env = {"NCW_WEBHOOK_URL": f"https://lambda.example.com/webhooks/netlify?token={TOKEN}"}
    config = load_config(
        "dev",
        webhook_url="https://lambda.example.com/webhooks/netlify",
        environ=env,
        stack_outputs=StackOutputs(None, "n/a"),
    )
    assert config.webhook_url == env["NCW_WEBHOOK_URL"]
    assert config.sources["webhook_url"] == PARAMETER and config.live
    assert config.sources["webhook_token"] == ENVIRONMENT


def test_a_token_less_webhook_url_parameter_prefers_the_stack_output_token():
    outputs = {"webhook_url": "https://lambda.example.com/webhooks/netlify?token=from%2Fstack"}
    config = load_config(
        "prod",
        webhook_url="https://other.example.com/webhooks/netlify?dist=E1",
        environ={"NCW_WEBHOOK_URL": "https://x/y?token=from-env"},
        stack_outputs=StackOutputs(outputs, "pulumi"),
    )
    assert (
        config.webhook_url
        == "https://other.example.com/webhooks/netlify?dist=E1&token=from%2Fstack"
    )
    assert config.sources["webhook_token"] == PULUMI


def test_a_webhook_url_parameter_with_its_own_token_is_used_as_given():
    config = load_config(
        "dev",
        webhook_url="https://b/y?Token=2",
        environ={"NCW_WEBHOOK_URL": "https://a/x?token=1"},
        stack_outputs=StackOutputs(None, "n/a"),
    )
    assert config.webhook_url == "https://b/y?Token=2" and "webhook_token" not in config.sources


def test_committed_stack_file_alone_does_not_reach_out_to_aws():
    config = load_config("dev", environ={}, stack_outputs=StackOutputs(None, "n/a"))
    assert config.distribution_ids == ("E2EXAMPLE1ABCD",)  # from Pulumi.dev.yaml
    assert not config.live
    here = where_am_i(config)
    assert here.account is None and "no stack to talk to" in here.skipped
    assert distributions_health(config, None) == []
    assert history(config, None).skipped
    assert not trigger(config).sent


def test_where_am_i_reports_account_and_masks_the_webhook(moto_aws):
    config = load_config(
        "dev",
        webhook_url=f"https://lambda.example.com/webhooks/netlify?token={TOKEN}",
        distribution_id="EAAA1",
        environ={},
        stack_outputs=StackOutputs(None, "n/a"),
    )
    here = where_am_i(config)
    assert here.account == "123456789012"
    assert TOKEN not in here.webhook_url and "token=Tok3…" in here.webhook_url
    assert TOKEN not in here.table().to_string()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/p?token=abcdefghijkl", "https://h/p?token=abcd…"),
        ("https://h/p?dist=E1&token=abcdefghijkl", "https://h/p?dist=E1&token=abcd…"),
        ("https://h/p?token=short", "https://h/p?token=…"),
        ("https://h/p", "https://h/p"),
    ],
)
def test_mask_url(url, shown):
    assert mask_url(url) == shown


# ---------------------------------------------------------------------------- 2. health


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


def _count(cloudfront, distribution_id):
    return cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"][
        "Quantity"
    ]


def _flags(cloudfront, distribution_id):
    cloudfront.get_distribution(Id=distribution_id)
    return " | ".join(distribution_health(cloudfront, distribution_id).flags)


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


# ---------------------------------------------------------------------------- 3. trigger


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


def _live_config(**kwargs):
    env = {"NCW_DISTRIBUTION_IDS": "EAAA1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    env.update(kwargs)
    return load_config("dev", environ=env, stack_outputs=StackOutputs(None, "n/a"))


def test_trigger_with_given_deploy_id_sends_nothing():
    def send(*args, **kwargs):
        raise AssertionError("must not send")

    outcome = trigger(_live_config(NCW_WEBHOOK_URL="http://h/x?token=t"), "d" * 24, send=send)
    assert outcome.deploy_id == "d" * 24 and not outcome.sent


def test_trigger_sends_a_signed_notification_and_masks_the_token():
    seen = {}

    def send(url, payload, jws_secret=None, host=None):
        seen.update(url=url, payload=payload, jws_secret=jws_secret, host=host)
        return NotificationResult(200, {"status": "ignored", "reason": "context"}, {})

    config = _live_config(
        NCW_WEBHOOK_URL=f"http://127.0.0.1:9/x?token={TOKEN}",
        NCW_JWS_SECRET=JWS,
        NCW_WEBHOOK_HOST="lambda.example.com",
        NCW_NETLIFY_SITE_ID="site-42",
    )
    outcome = trigger(config, send=send)
    assert outcome.sent and outcome.signed
    assert seen["payload"]["site_id"] == "site-42" and seen["payload"]["id"] == outcome.deploy_id
    assert seen["jws_secret"] == JWS and seen["host"] == "lambda.example.com"
    text = outcome.markdown()
    assert TOKEN not in text and "200 ignored" in text


def test_trigger_reports_an_unreachable_webhook():
    config = _live_config(NCW_WEBHOOK_URL="http://127.0.0.1:9/x?token=secretsecretsecret")
    outcome = trigger(config, send=lambda *a, **k: (_ for _ in ()).throw(OSError("refused")))
    assert outcome.sent and outcome.result is None and "no answer" in outcome.error


# ---------------------------------------------------------------------------- 4. verify


def _wait(cloudfront, distribution_id, deploy, clock, **options):
    """The wait loop for ``deploy`` (paths ``/*``) on ``clock``: no real sleeping, no bar."""
    return wait_for_invalidation(
        cloudfront,
        distribution_id,
        deploy,
        ["/*"],
        clock=clock,
        sleep=clock.sleep,
        progress=False,
        **options,
    )


def test_finds_the_function_invalidation_by_caller_reference(
    cloudfront, make_distribution, invalidate
):
    distribution_id = make_distribution()
    deploy = "5ebc34bf4fea0b01f02efa3a"
    invalidate(distribution_id, ["/*"], caller_reference("another0deploy0id0000000", ["/*"]))
    wanted = invalidate(distribution_id, ["/*"], caller_reference(deploy, ["/*"]))
    invalidate(distribution_id, ["/a"], "runbook-manual-x")
    found = find_invalidation(cloudfront, distribution_id, caller_reference(deploy, ["/*"]))
    assert found.invalidation_id == wanted and found.matched_by == "reference"
    assert found.paths == ("/*",)


def test_falls_back_to_the_deploy_when_paths_differ(cloudfront, make_distribution, invalidate):
    distribution_id = make_distribution()
    deploy = "5ebc34bf4fea0b01f02efa3a"
    made = invalidate(distribution_id, ["/index.html"], caller_reference(deploy, ["/index.html"]))
    found = find_invalidation(
        cloudfront,
        distribution_id,
        caller_reference(deploy, ["/*"]),
        prefix=reference_prefix(deploy),
    )
    assert found.invalidation_id == made and found.matched_by == "deploy prefix"
    exact_only = find_invalidation(cloudfront, distribution_id, caller_reference(deploy, ["/*"]))
    assert exact_only is None


def test_wait_follows_in_progress_to_completed_without_sleeping(
    cloudfront, make_distribution, invalidate, set_status, fake_clock
):
    distribution_id = make_distribution()
    deploy = "aaaaaaaaaaaaaaaaaaaaaaaa"
    made = invalidate(distribution_id, ["/*"], caller_reference(deploy, ["/*"]))
    set_status(distribution_id, made, "InProgress")
    fake_clock.on_sleep = lambda n: n == 3 and set_status(distribution_id, made, "Completed")
    started = time.monotonic()
    result = _wait(
        cloudfront, distribution_id, deploy, fake_clock, timeout_s=300, poll_interval_s=20
    )
    assert time.monotonic() - started < 5  # no real sleeping
    assert result.completed and not result.timed_out
    assert result.invalidation_id == made and result.status == "Completed"
    assert fake_clock.sleeps == [20, 20, 20] and result.elapsed_s == 60 and result.polls == 4


def test_wait_stops_at_the_timeout_with_guidance(
    cloudfront, make_distribution, invalidate, set_status, fake_clock
):
    distribution_id = make_distribution()
    deploy = "bbbbbbbbbbbbbbbbbbbbbbbb"
    made = invalidate(distribution_id, ["/*"], caller_reference(deploy, ["/*"]))
    set_status(distribution_id, made, "InProgress")
    result = _wait(
        cloudfront, distribution_id, deploy, fake_clock, timeout_s=50, poll_interval_s=20
    )
    assert result.timed_out and result.found and not result.completed
    assert result.status == "InProgress"
    assert fake_clock.sleeps == [20, 20, 10]  # never sleeps past the deadline
    assert result.elapsed_s == 50
    assert "Re-run this cell" in result.guidance


def test_wait_for_an_invalidation_that_never_appears_times_out(
    cloudfront, make_distribution, fake_clock
):
    distribution_id = make_distribution()
    result = _wait(
        cloudfront,
        distribution_id,
        "cccccccccccccccccccccccc",
        fake_clock,
        timeout_s=30,
        poll_interval_s=10,
    )
    assert result.timed_out and not result.found
    assert all(f"section {n}" in result.guidance for n in (3, 4, 8))


@pytest.mark.parametrize("status", ["Completed", "COMPLETED", "completed"])
def test_status_is_compared_case_insensitively(status):
    assert is_completed(status)
    assert not is_completed("InProgress")


def test_moto_completed_status_ends_the_wait_at_once(
    cloudfront, make_distribution, invalidate, fake_clock
):
    distribution_id = make_distribution()
    deploy = "dddddddddddddddddddddddd"
    invalidate(distribution_id, ["/*"], caller_reference(deploy, ["/*"]))  # moto: "COMPLETED"
    result = _wait(cloudfront, distribution_id, deploy, fake_clock, timeout_s=30)
    assert result.completed and fake_clock.sleeps == []


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
    result = _wait(
        slow,
        distribution_id,
        "ffffffffffffffffffffffff",
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
    deploy = "abababababababababababab"
    for index in range(3):
        invalidate(distribution_id, ["/*"], f"other-{index}")
    counted = Counting(cloudfront)

    def later(sleeps: int) -> None:
        if sleeps == 1:
            invalidate(distribution_id, ["/x"], "other-late")
        if sleeps == 3:
            invalidate(distribution_id, ["/*"], caller_reference(deploy, ["/*"]))

    fake_clock.on_sleep = later
    result = _wait(counted, distribution_id, deploy, fake_clock, timeout_s=300, poll_interval_s=10)
    assert result.completed and result.polls == 4 and result.matched_by == "reference"
    listed = {
        item["Id"]
        for item in cloudfront.list_invalidations(DistributionId=distribution_id)[
            "InvalidationList"
        ]["Items"]
    }
    read = [kwargs["Id"] for name, kwargs in counted.calls if name == "get_invalidation"]
    assert len(read) == len(set(read)) == len(listed) == 5
    assert counted.count("list_invalidations") == 4


class Unreachable:
    """Stands in for AwsClients when AWS refuses (no credentials, no permission)."""

    @property
    def cloudfront(self):
        from botocore.exceptions import NoCredentialsError

        class Client:
            def __getattr__(self, name):
                def fail(**kwargs):
                    raise NoCredentialsError()

                return fail

        return Client()


def test_aws_failures_are_findings_not_crashes():
    config = _live_config()
    verified = verify(config, Unreachable(), "d" * 24, wait_timeout_s=1, progress=False)
    assert "Unable to locate credentials" in verified.error and not verified.completed
    assert "Cannot check CloudFront" in verified.markdown()
    past = history(config, Unreachable())
    assert past.error and past.usage is None and past.table.empty
    health = distribution_health(Unreachable().cloudfront, "E1")
    assert "cannot read the distribution" in health.error


def test_verify_without_a_deploy_is_skipped_with_a_reason():
    result = verify(_live_config(), None, None)
    assert result.skipped and "no deploy" in result.skipped


# ---------------------------------------------------------------------------- 5. history


def test_history_lists_invalidations_newest_first(cloudfront, make_distribution, invalidate):
    distribution_id = make_distribution()
    first = invalidate(distribution_id, ["/*"], caller_reference("e" * 24, ["/*"]))
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
    config = load_config(
        "dev",
        environ={"NCW_DISTRIBUTION_IDS": distribution_id, "AWS_ENDPOINT_URL": "http://moto"},
        stack_outputs=StackOutputs(None, "n/a"),
    )
    past = history(config, SimpleNamespace(cloudfront=counted), limit=25)
    assert len(past.table) == 25
    assert past.usage.invalidations == 130 and past.usage.paths == 65 * 1 + 65 * 2
    assert "per AWS account" in past.usage.note and "lower bound" in past.usage.note
    read = [kwargs["Id"] for name, kwargs in counted.calls if name == "get_invalidation"]
    assert len(read) == len(set(read)) == 130  # table and month share the reads
    assert len(past.charted) == 130


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


def test_history_chart_draws_days_and_months_with_the_free_line():
    frame = _history([("2026-11-02T10:00:00Z", 3), ("2026-10-15T10:00:00Z", 1)])
    figure = history_chart(frame, now=datetime(2026, 11, 28, tzinfo=UTC))
    per_day, per_month = figure.axes
    assert sum(bar.get_height() for bar in per_day.patches) == 1  # October is beyond 30 days
    assert [bar.get_height() for bar in per_month.patches] == [1, 3]
    # Small monthly counts are printed on their bars, readable against the 1,000 line.
    assert [text.get_text() for text in per_month.texts] == ["1", "3"]
    assert any(line.get_ydata()[0] == 1000 for line in per_month.get_lines())
    empty = history_chart(_history([]))
    assert "no invalidations yet" in empty.axes[0].texts[0].get_text()


# ---------------------------------------------------------------------------- 6. manual


def test_manual_dry_run_shows_the_request_and_sends_nothing(cloudfront, make_distribution):
    distribution_id = make_distribution()
    result = manual_invalidation(
        cloudfront, distribution_id, ["/index.html", "/pdf/*"], dry_run=True
    )
    assert not result.created and not result.problems
    assert result.request["InvalidationBatch"]["Paths"] == {
        "Quantity": 2,
        "Items": ["/index.html", "/pdf/*"],
    }
    assert "Dry run" in result.markdown()
    assert _count(cloudfront, distribution_id) == 0


def test_manual_paths_are_validated_like_the_function(cloudfront, make_distribution):
    distribution_id = make_distribution()
    result = manual_invalidation(
        cloudfront, distribution_id, ["index.html", "/a*/b", "/ok", "/with space"], dry_run=False
    )
    assert len(result.problems) == 3 and not result.created
    assert "must start with '/'" in result.problems[0]
    assert "only as its last character" in result.problems[1]
    assert _count(cloudfront, distribution_id) == 0
    assert manual_invalidation(cloudfront, distribution_id, [], dry_run=True).problems


def test_manual_invalidation_is_created_when_not_a_dry_run(cloudfront, make_distribution):
    distribution_id = make_distribution()
    result = manual_invalidation(cloudfront, distribution_id, ["/index.html"], dry_run=False)
    assert result.created
    item = cloudfront.get_invalidation(DistributionId=distribution_id, Id=result.invalidation_id)
    batch = item["Invalidation"]["InvalidationBatch"]
    assert batch["Paths"]["Items"] == ["/index.html"]
    assert batch["CallerReference"].startswith("runbook-manual-")


def test_manual_reference_is_stable_within_a_minute():
    now = datetime(2026, 11, 28, 12, 30, 5, tzinfo=UTC)
    later = datetime(2026, 11, 28, 12, 30, 55, tzinfo=UTC)
    assert manual_reference(["/b", "/a"], now) == manual_reference(["/a", "/b"], later)
    assert manual_reference(["/a"], now) != manual_reference(["/a", "/b"], now)


# ---------------------------------------------------------------------------- 7. troubleshooting


def test_recent_errors_are_the_error_records_with_secrets_masked(logs):
    group = "/aws/lambda/ncw-dev"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now_ms = int(time.time() * 1000)
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
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s1",
        logEvents=[
            {"timestamp": now_ms - 1000 * (len(messages) - i), "message": m}
            for i, m in enumerate(messages)
        ],
    )
    result = recent_errors(logs, group)
    assert len(result.table) == 3
    assert set(result.table["request_id"]) >= {"req-1", "req-2"}
    assert "abcdefghijklmnop" not in result.table.to_string()
    row = result.table[result.table["request_id"] == "req-1"].iloc[0]
    assert "AccessDenied" in row["details"]
    assert "3 error record(s)" in result.markdown()


def test_missing_log_group_is_explained(logs):
    result = recent_errors(logs, "/aws/lambda/never-ran")
    assert result.table.empty and "does not exist" in result.message


def test_answers_table_explains_every_answer():
    answers = set(answers_table()["answer"])
    for status in ("401", "403", "405", "413", "400", "500", "503", "200 ignored", "202 queued"):
        assert status in answers
    assert "502 (from the ALB)" in answers
    assert "worker" in explain_answer(202, {"status": "queued"})
    assert "JWS" in explain_answer(401)
    assert "not a deploy we act on" in explain_answer(200, {"status": "ignored"})
