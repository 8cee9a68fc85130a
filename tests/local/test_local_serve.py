"""``make local``: the stack keeps running, prints its environment, stops on Ctrl-C."""

from __future__ import annotations

import http.client
import os
import shlex
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

from local.serve import export_lines

ROOT = Path(__file__).resolve().parents[2]


def test_export_lines_are_shell_quoted_and_sorted():
    lines = export_lines({"B": "x y", "A": "/*", "C": "plain"})
    assert lines == ["export A='/*'", "export B='x y'", "export C=plain"]


def test_serve_prints_a_usable_environment_and_stops_on_ctrl_c():
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        exported: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exported[name] = shlex.split(value)[0]
            if "Press Ctrl-C to stop." in line:
                break
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
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Local stack stopped." in output
