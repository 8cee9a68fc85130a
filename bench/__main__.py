"""Benchmark the function: warm latency against a naive handler, cold import against boto3.

Run with ``make bench`` (``venv/bin/python -m bench``). Not a test: it prints figures and exits 0.

1. Warm latency: a moto server on 127.0.0.1 (a free port) stands in for SSM, SQS and CloudFront;
   the same authenticated, signed request goes to the ingest (``function.handler.handler``: one
   SendMessageBatch) and to ``bench.baseline`` (the original recipe: new boto3 clients on every
   call, nothing cached, CreateInvalidation inside the request), interleaved, after a warm-up.
   Target: ours <= 0.5x the baseline's median.
3. The pipeline on the local stack (``bench/pipeline.py``): from the POST to the worker's
   CreateInvalidation, median and p95.
2. Cold import: ``import function.handler`` versus ``import boto3`` alone, each timed inside a fresh
   interpreter, alternating, several runs. Measured twice: with the function's bytecode cached,
   and compiled from source as in a Lambda package without ``.pyc`` files. Target: <= 1.15.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "function"

WARMUP = 10
ROUNDS = 60
IMPORT_RUNS = 9

TOKEN = "bench-token-Zq9x"
JWS_SECRET = "bench-jws-secret-0123456789abcdef0123"
PARAMETER = "/netlify-webhook/bench/secrets"
DEPLOY = {
    "id": "6566f3c2b9a1d40008a7e1f3",
    "site_id": "bench-site",
    "state": "ready",
    "context": "production",
    "branch": "main",
}


class Context:
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def netlify_signature(body: bytes) -> str:
    """A Netlify-style HS256 JWS over ``body`` (made here with the standard library)."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64url(
        json.dumps({"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}).encode()
    )
    mac = hmac.new(JWS_SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(mac)}"


def alb_event() -> dict:
    body = json.dumps(DEPLOY).encode()
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:bench"}},
        "httpMethod": "POST",
        "path": "/netlify",
        "queryStringParameters": {"token": TOKEN},
        "headers": {
            "content-type": "application/json",
            "x-netlify-event": "deploy_created",
            "x-webhook-signature": netlify_signature(body),
        },
        "isBase64Encoded": False,
        "body": body.decode(),
    }


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"


def warm_latency() -> tuple[float, float]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=f"http://{host}:{port}",
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)
        import boto3

        cloudfront = boto3.client("cloudfront")
        distribution_id = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "bench",
                "Comment": "bench",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "netlify",
                            "DomainName": "bench.netlify.app",
                            "CustomOriginConfig": {
                                "HTTPPort": 80,
                                "HTTPSPort": 443,
                                "OriginProtocolPolicy": "https-only",
                            },
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "netlify",
                    "ViewerProtocolPolicy": "https-only",
                },
            }
        )["Distribution"]["Id"]
        boto3.client("ssm").put_parameter(
            Name=PARAMETER,
            Type="SecureString",
            Value=json.dumps({"token": TOKEN, "jws_secret": JWS_SECRET}),
        )
        queue_url = boto3.client("sqs").create_queue(QueueName="bench-invalidations")["QueueUrl"]
        os.environ.update(
            DISTRIBUTION_IDS=distribution_id, SECRETS_PARAMETER=PARAMETER, QUEUE_URL=queue_url
        )

        from bench import baseline
        from function import handler

        handler.reset_state()
        event, context = alb_event(), Context()
        for candidate in (handler.handler, baseline.handler):
            for _ in range(WARMUP):
                status = candidate(event, context)["statusCode"]
                if status >= 300:
                    raise SystemExit(f"{candidate.__module__}: unexpected status {status}")

        ours: list[float] = []
        naive: list[float] = []
        for _ in range(ROUNDS):  # interleaved, so drift hits both alike
            for candidate, samples in ((handler.handler, ours), (baseline.handler, naive)):
                start = time.perf_counter()
                candidate(event, context)
                samples.append(time.perf_counter() - start)
        return statistics.median(ours), statistics.median(naive)
    finally:
        server.stop()


def _import_time(statement: str, cwd: str | None) -> float:
    # Lambda imports the handler from the archive's root (/var/task), the working directory
    # here: ``python -c`` looks there first, before the project's editable install.
    code = (
        "import time\n"
        + f"start = time.perf_counter()\n{statement}\n"
        + "print(time.perf_counter() - start)\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    output = subprocess.run(  # noqa: S603 (our own interpreter, a fixed program)
        [sys.executable, "-B", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
    ).stdout
    return float(output.strip().splitlines()[-1])


def cold_import(compile_from_source: bool) -> tuple[float, float]:
    """Median import seconds of (handler, boto3 alone), each in fresh interpreters."""
    ours: list[float] = []
    boto: list[float] = []
    for _ in range(IMPORT_RUNS + 1):  # the first pair warms the OS file cache; dropped below
        with tempfile.TemporaryDirectory() as scratch:
            root = str(FUNCTION_DIR.parent)
            if compile_from_source:  # a copy without __pycache__, and -B writes none
                root = scratch
                shutil.copytree(
                    FUNCTION_DIR,
                    Path(scratch) / "function",
                    ignore=shutil.ignore_patterns("__pycache__"),
                )
            ours.append(_import_time("import function.handler", root))
        boto.append(_import_time("import boto3", None))
    return statistics.median(ours[1:]), statistics.median(boto[1:])


def main() -> int:
    from bench import pipeline

    print("Warm per-request latency (moto server on 127.0.0.1, same signed request)")
    ours, naive = warm_latency()
    print(f"  function.handler.handler median {ours * 1000:8.2f} ms  ({ROUNDS} requests)")
    print(f"  naive baseline           median {naive * 1000:8.2f} ms  ({ROUNDS} requests)")
    verdict = "meets" if ours / naive <= 0.5 else "MISSES"
    print(f"  ratio ours/baseline      {ours / naive:8.3f}     ({verdict} the 0.5x target)")
    print()
    # Populate function/__pycache__ once, so the first measurement really has cached bytecode.
    subprocess.run(
        [sys.executable, "-c", "import function.handler"], check=True, cwd=FUNCTION_DIR.parent
    )
    print(f"Cold import, fresh interpreter each run (median of {IMPORT_RUNS})")
    for label, from_source in (("bytecode cached", False), ("compiled from source", True)):
        ours_s, boto_s = cold_import(from_source)
        verdict = "meets" if ours_s / boto_s <= 1.15 else "MISSES"
        print(f"  {label}:")
        print(f"    import function.handler median {ours_s * 1000:8.2f} ms")
        print(f"    import boto3 alone     median {boto_s * 1000:8.2f} ms")
        print(f"    ratio                  {ours_s / boto_s:8.3f}     ({verdict} the 1.15 target)")
    print()
    pipeline.report(pipeline.post_to_invalidation_latency())
    return 0


if __name__ == "__main__":
    sys.exit(main())
