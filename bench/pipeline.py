"""On the local stack: the time from Netlify's POST to the worker's CreateInvalidation.

The ALB stand-in runs the ingest, the queue runner (the event source mapping stand-in) polls in
the background and runs the worker, all in this process against a moto server. The clock
starts before the POST and stops when the worker's CloudFront client is about to send
CreateInvalidation (a botocore ``before-call`` hook). What it measures is the pipeline's own
overhead (ingest, SQS, runner, worker) on this machine; the real event source mapping's polling
adds its own delay, which AWS does not document as a figure.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid

ROUNDS = 20
WAIT_S = 10.0


def percentile(samples: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``samples``."""
    ordered = sorted(samples)
    rank = max(1, round(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def post_to_invalidation_latency(rounds: int = ROUNDS) -> list[float]:
    """Seconds from each POST to its CreateInvalidation, one notification at a time."""
    import boto3

    from function import worker
    from local.stack import LocalStack
    from runbook_lib.notify import netlify_deploy_payload, send_deploy_notification

    issued: dict[str, float] = {}
    arrived = threading.Condition()

    def on_create_invalidation(params, **_):
        reference = params["InvalidationBatch"]["CallerReference"]
        with arrived:
            issued.setdefault(reference, time.perf_counter())
            arrived.notify_all()

    local = LocalStack.start(stack="dev", poll_queue=True)
    try:
        # The worker makes its clients from boto3's default session: the hook must be there
        # before the worker's first client exists.
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register(
            "provide-client-params.cloudfront.CreateInvalidation", on_create_invalidation
        )
        worker.reset_state()
        site_id = local.settings.netlify_site_id or str(uuid.uuid4())
        samples: list[float] = []
        for _ in range(rounds):
            payload = netlify_deploy_payload(site_id)
            started = time.perf_counter()
            result = send_deploy_notification(
                local.webhook_url, payload, jws_secret=local.jws_secret, host=local.webhook_host
            )
            if result.status != 202:
                raise SystemExit(f"the ingest answered {result.status}, not 202")
            (reference,) = {item["caller_reference"] for item in result.body["invalidations"]}
            with arrived:
                if not arrived.wait_for(lambda ref=reference: ref in issued, timeout=WAIT_S):
                    raise SystemExit(f"no CreateInvalidation within {WAIT_S} s")
            samples.append(issued[reference] - started)
        return samples
    finally:
        local.stop()


def report(samples: list[float]) -> None:
    print(f"POST -> CreateInvalidation issued, local stack ({len(samples)} notifications)")
    print(f"  median {statistics.median(samples) * 1000:8.1f} ms")
    print(f"  p95    {percentile(samples, 0.95) * 1000:8.1f} ms")
