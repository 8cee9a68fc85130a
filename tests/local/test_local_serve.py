"""``make local``: the stack keeps running, prints its environment, stops on Ctrl-C."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import selectors
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import boto3
import jwt

from local.serve import export_lines

ROOT = Path(__file__).resolve().parents[2]
READY = "Press Ctrl-C to stop."
STARTUP_DEADLINE_S = 60
STOP_DEADLINE_S = 30


def test_export_lines_are_shell_quoted_and_sorted():
    lines = export_lines({"B": "x y", "A": "/*", "C": "plain"})
    assert lines == ["export A='/*'", "export B='x y'", "export C=plain"]


def read_until(process: subprocess.Popen, marker: str, deadline_s: float) -> str:
    """The child's output up to and including ``marker``; fails at the deadline or at EOF."""
    fd = process.stdout.fileno()
    seen = b""
    end = time.monotonic() + deadline_s
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while marker.encode() not in seen:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {marker!r} within {deadline_s} s:\n{seen.decode()}")
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the process ended before {marker!r}:\n{seen.decode()}")
            seen += chunk
    return seen.decode()


def stop(process: subprocess.Popen) -> str:
    """Ctrl-C, then the rest of the output; killed (and reaped) if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        rest, _ = process.communicate(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
        raise AssertionError(f"not stopped {STOP_DEADLINE_S} s after Ctrl-C") from None
    return rest.decode()


def _exports(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of ``text``, unquoted."""
    exported: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exported[name] = shlex.split(value)[0] if value else ""
    return exported


def _invalidated_within(exported: dict[str, str], deploy_id: str, deadline_s: float) -> bool:
    """Whether an invalidation for ``deploy_id`` appears on the first distribution in time."""
    cloudfront = boto3.client(
        "cloudfront",
        endpoint_url=exported["AWS_ENDPOINT_URL"],
        region_name=exported["NCW_REGION"],
        aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
    )
    dist_id = exported["NCW_DISTRIBUTION_IDS"].split(",")[0]
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        listed = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]
        for item in listed.get("Items") or []:
            got = cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])
            if deploy_id in got["Invalidation"]["InvalidationBatch"]["CallerReference"]:
                return True
        time.sleep(0.2)
    return False


def test_serve_prints_a_usable_environment_and_stops_on_ctrl_c():
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = ""
    try:
        output = read_until(process, READY, STARTUP_DEADLINE_S)
        exported = _exports(output)
        assert exported["NCW_STACK"] == "dev"  # the first stack's, of every stack file
        assert exported["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert "NCW_JWS_SECRET" in exported

        url = urllib.parse.urlsplit(exported["NCW_WEBHOOK_URL"])
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
        connection.request(
            "POST",
            f"{url.path}?{url.query}",
            body=b"{}",
            headers={"Host": exported["NCW_WEBHOOK_HOST"], "Content-Type": "application/json"},
        )
        assert connection.getresponse().status == 401  # unsigned: the function refuses it
        connection.close()

        # The pipeline's names for the runbook, and a queue that is worked in the background.
        for name in (
            "NCW_QUEUE_URL",
            "NCW_DEAD_LETTER_QUEUE_URL",
            "NCW_WORKER_FUNCTION_NAME",
            "NCW_WORKER_LOG_GROUP",
            "NCW_ALARM_TOPIC_ARN",
            "NCW_REGION",
        ):
            assert exported[name], name
        deploy_id = "0123456789abcdef01234567"
        body = json.dumps(
            {
                "id": deploy_id,
                "site_id": exported["NCW_NETLIFY_SITE_ID"],
                "state": "ready",
                "context": "production",
            }
        ).encode()
        claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
        connection.request(
            "POST",
            f"{url.path}?{url.query}",
            body=body,
            headers={
                "Host": exported["NCW_WEBHOOK_HOST"],
                "Content-Type": "application/json",
                "X-Netlify-Event": "deploy_created",
                "X-Webhook-Signature": jwt.encode(
                    claims, exported["NCW_JWS_SECRET"], algorithm="HS256"
                ),
            },
        )
        assert connection.getresponse().status == 202
        connection.close()
        assert _invalidated_within(exported, deploy_id, deadline_s=30)

        # The other stack (dev-url, behind the function URL stand-in): its file to source.
        sourced = re.search(r"^#\s+\. (\S+dev-url\.env)$", output, re.MULTILINE)
        assert sourced, output
        other = _exports(Path(sourced.group(1)).read_text())
        assert other["NCW_STACK"] == "dev-url" and other["NCW_ENDPOINT"] == "functionUrl"
        assert other["AWS_ENDPOINT_URL"] == exported["AWS_ENDPOINT_URL"]  # one embedded AWS
        assert other["NCW_FLEET_FILE"] == exported["NCW_FLEET_FILE"]
        other_url = urllib.parse.urlsplit(other["NCW_WEBHOOK_URL"])
        connection = http.client.HTTPConnection(other_url.hostname, other_url.port, timeout=20)
        connection.request(
            "POST",
            f"{other_url.path}?{other_url.query}",
            body=b"{}",
            headers={"Content-Type": "application/json"},  # no Host: a function URL has no rule
        )
        assert connection.getresponse().status == 401  # unsigned: the function refuses it
        connection.close()
    finally:
        output += stop(process)
    assert process.returncode == 0, output
    assert "Local stacks stopped." in output
