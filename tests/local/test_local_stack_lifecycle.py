"""Starting and stopping local stacks: one at a time, and nothing left behind, even on failure.

Every test here starts its own stack, so this module uses no module-scoped stack fixture.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from infra.stack_files import PROJECT_DIR, load_stack_files
from local import listener as listener_module
from local.embedded_aws import EmbeddedAws
from local.fleet import LocalFleet
from local.stack import LocalStack, LocalStackAlreadyRunning
from tests.local.local_helpers import (
    TEST_JWS_SECRET,
    TEST_TOKEN,
    RecordingFunction,
    RecordingWorker,
    deploy_body,
    request,
    signed_headers,
)

DEV_IDS = json.loads(load_stack_files("dev").values["distributionIds"])


@pytest.fixture
def recording_function() -> RecordingFunction:
    return RecordingFunction()


def _port_is_closed(url: str) -> bool:
    address = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((address.hostname, address.port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_stop_restores_the_environment_and_frees_the_ports(monkeypatch, recording_function):
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    monkeypatch.setenv("DISTRIBUTION_IDS", "BEFORE")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    before = dict(os.environ)

    local = LocalStack.start("dev", invoke=recording_function)
    try:
        assert "AWS_PROFILE" not in os.environ  # nothing may reach a real account
        assert os.environ["DISTRIBUTION_IDS"] == ",".join(DEV_IDS)
        listener_port = local.listener.port
    finally:
        local.stop()
    local.stop()  # a second stop is harmless

    assert dict(os.environ) == before
    with socket.socket() as probe:  # the listener's port is free again
        probe.bind(("127.0.0.1", listener_port))


def test_fresh_secrets_are_generated_for_each_start(recording_function):
    with LocalStack.start("dev", invoke=recording_function) as first:
        first_token, first_jws = first.rule.token.reveal(), first.jws_secret
    with LocalStack.start("dev", invoke=recording_function) as second:
        assert second.rule.token.reveal() != first_token
        assert second.jws_secret != first_jws
        assert len(first_token) >= 16


def test_an_unknown_stack_fails_before_anything_starts():
    with pytest.raises(FileNotFoundError):
        LocalStack.start("no-such-stack")


def test_a_second_stack_in_the_same_process_is_refused_and_the_first_keeps_its_state(
    recording_function,
):
    with LocalStack.start("dev", invoke=recording_function) as first:
        with pytest.raises(
            LocalStackAlreadyRunning, match="a local stack is already running in this process"
        ):
            LocalStack.start("dev", invoke=recording_function)
        cloudfront = first.client("cloudfront")
        listed = cloudfront.list_distributions()["DistributionList"]["Items"]
        assert [item["Id"] for item in listed] == DEV_IDS  # not reset by the refused start
    with LocalStack.start("dev", invoke=recording_function) as after:  # free again once stopped
        assert after.endpoint_url


def test_a_failed_moto_reset_on_stop_still_stops_moto(monkeypatch, recording_function):
    local = LocalStack.start("dev", invoke=recording_function)
    endpoint = local.endpoint_url

    def failing_reset(self):
        raise OSError("reset refused")

    monkeypatch.setattr(EmbeddedAws, "reset", failing_reset)
    try:
        local.stop()  # logs the failed reset and carries on
        assert _port_is_closed(endpoint)
        assert "AWS_ENDPOINT_URL" not in os.environ
    finally:
        monkeypatch.undo()
        local.stop()
    with LocalStack.start("dev", invoke=recording_function):  # the process slot was released
        pass


def test_a_failed_moto_reset_on_start_still_stops_moto(monkeypatch, recording_function):
    endpoints = []

    def failing_reset(self):
        endpoints.append(self.endpoint_url)
        raise OSError("reset refused")

    monkeypatch.setattr(EmbeddedAws, "reset", failing_reset)
    with pytest.raises(OSError, match="reset refused"):
        LocalStack.start("dev", invoke=recording_function)
    assert endpoints and all(_port_is_closed(endpoint) for endpoint in endpoints)
    monkeypatch.undo()
    with LocalStack.start("dev", invoke=recording_function):  # the process slot was released
        pass


@pytest.fixture
def quiet_root_logger():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.WARNING)
    yield root
    root.setLevel(level)
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)


def test_a_listener_that_cannot_bind_leaves_the_root_logger_as_it_was(
    monkeypatch, recording_function, quiet_root_logger
):
    handlers = list(quiet_root_logger.handlers)

    def cannot_bind(*args, **kwargs):
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(listener_module, "ThreadingHTTPServer", cannot_bind)
    with pytest.raises(OSError, match="Address already in use"):
        LocalStack.start("dev", invoke=recording_function)
    assert quiet_root_logger.handlers == handlers
    assert quiet_root_logger.level == logging.WARNING
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_multi_value_mode_round_trips_through_the_real_function():
    with LocalStack.start(
        "dev", webhook_token=TEST_TOKEN, jws_secret=TEST_JWS_SECRET, multi_value_headers=True
    ) as local:
        body = deploy_body(local.settings.netlify_site_id, "dep-multi")
        status, reason, headers, answer = request(local, body=body, headers=signed_headers(body))
    assert (status, reason) == (202, "Accepted"), answer
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer)["deploy_id"] == "dep-multi"


def _runner_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "local-queue-runner"]


def test_the_background_runner_hands_queued_messages_to_the_worker_until_stopped(
    recording_function,
):
    worker = RecordingWorker()
    with LocalStack.start("dev", invoke=recording_function, worker_invoke=worker) as local:
        assert local.runner is not None and local.runner.background
        sqs = local.client("sqs")
        sent = sqs.send_message(QueueUrl=local.queue_url, MessageBody="in the background")
        deadline = time.monotonic() + 30
        while not worker.events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [record["messageId"] for e in worker.events for record in e["Records"]] == [
            sent["MessageId"]
        ]
        while not local.runner.history and time.monotonic() < deadline:
            time.sleep(0.05)  # the batch's deletions follow the worker's answer
        attributes = sqs.get_queue_attributes(
            QueueUrl=local.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attributes == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }
        assert len(_runner_threads()) == 1
    assert _runner_threads() == []


# -- fleets: several stacks on one embedded AWS ---------------------------------------------------


class EnvironmentRecorder(RecordingFunction):
    """A recording ingest that also keeps ``os.environ`` as each invocation saw it."""

    def __init__(self) -> None:
        super().__init__()
        self.environments: list[dict[str, str]] = []

    def __call__(self, event: dict, context: object) -> dict:
        self.environments.append(dict(os.environ))
        return super().__call__(event, context)


def test_each_function_of_a_fleet_sees_only_its_own_stacks_environment(monkeypatch):
    monkeypatch.delenv("QUEUE_URL", raising=False)
    recorder = EnvironmentRecorder()
    with LocalFleet.start(["dev", "dev-url"], invoke=recorder, poll_queue=False) as fleet:
        dev, url = fleet["dev"], fleet["dev-url"]
        request(dev, query=f"token={dev.settings.webhook_token.reveal()}")
        urllib.request.urlopen(url.listener_url + "/", timeout=10).read()  # noqa: S310 (local)
        seen_dev, seen_url = recorder.environments
        assert (seen_dev["QUEUE_URL"], seen_url["QUEUE_URL"]) == (dev.queue_url, url.queue_url)
        assert seen_dev["AWS_LAMBDA_FUNCTION_NAME"] == dev.function_name
        assert seen_url["AWS_LAMBDA_FUNCTION_NAME"] == url.function_name
        assert seen_url["WEBHOOK_PATH"] == url.settings.webhook_path
        assert "QUEUE_URL" not in os.environ  # between invocations: neither stack's
        assert os.environ["AWS_ENDPOINT_URL"] == fleet.endpoint_url


def test_a_fleet_refuses_a_second_embedded_aws_and_stops_cleanly(monkeypatch, recording_function):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("NCW_FLEET_FILE", raising=False)
    before = dict(os.environ)
    fleet = LocalFleet.start(["dev", "dev-url"], invoke=recording_function)
    try:
        ports = [local.listener.port for local in fleet]
        folder = fleet.fleet_file.parent
        with pytest.raises(LocalStackAlreadyRunning, match="fleet dev, dev-url"):
            LocalStack.start("dev", invoke=recording_function)
        with pytest.raises(LocalStackAlreadyRunning):
            LocalFleet.start(["dev"], invoke=recording_function)
        endpoint = fleet.endpoint_url
    finally:
        fleet.stop()
    fleet.stop()  # a second stop is harmless
    assert dict(os.environ) == before
    assert not folder.exists()  # the fleet file (secrets) is gone
    assert _port_is_closed(endpoint)
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
    with LocalStack.start("dev", invoke=recording_function):  # the process is free again
        pass


def test_an_unknown_stack_fails_the_fleet_before_anything_starts(recording_function):
    with pytest.raises(FileNotFoundError):
        LocalFleet.start(["dev", "no-such-stack"], invoke=recording_function)
    with LocalStack.start("dev", invoke=recording_function):  # nothing was claimed
        pass


@pytest.fixture
def two_sites(tmp_path) -> Path:
    """dev's config twice, as two sites with distributions of their own."""
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    for stack, dist_id in (("site-a", "EAAAAAAAAAAAA1"), ("site-b", "EBBBBBBBBBBBB2")):
        config = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
        config["config"]["netlify-cloudfront-webhook:distributionIds"] = [dist_id]
        config["config"]["netlify-cloudfront-webhook:domain"] = f"lambda.{stack}.example.com"
        config["config"]["netlify-cloudfront-webhook:hostedZone"] = f"{stack}.example.com"
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_a_fleet_of_stacks_with_distributions_of_their_own_seeds_each(
    two_sites, recording_function
):
    with LocalFleet.start(project_dir=two_sites, invoke=recording_function) as fleet:
        assert list(fleet.stacks) == ["site-a", "site-b"]  # every stack file, by name
        cloudfront = fleet["site-a"].client("cloudfront")
        listed = cloudfront.list_distributions()["DistributionList"]["Items"]
        assert sorted(item["Id"] for item in listed) == ["EAAAAAAAAAAAA1", "EBBBBBBBBBBBB2"]
        assert all(local.shared_distribution_ids == () for local in fleet)
        aliases = {
            item["Id"]: item["Aliases"]["Items"][0] for item in listed
        }  # each shaped like its own site
        assert aliases == {
            "EAAAAAAAAAAAA1": "site-a.example.com",
            "EBBBBBBBBBBBB2": "site-b.example.com",
        }
