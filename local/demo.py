"""``make demo``: the whole flow on an embedded AWS, then the runbook's report.

1. start the local stack for a stack config (default ``Pulumi.dev.yaml``);
2. send a signed deploy notification as Netlify would, through the local ALB stand-in: the
   ingest queues one message per distribution and answers 202;
3. show the queued messages, then run the event source mapping stand-in once over the queue:
   it hands them to the worker, which creates the invalidations;
4. find the invalidation the worker created (by its caller reference);
5. execute ``notebooks/runbook.ipynb`` against the local stack with papermill (the queue runner
   now polling in the background) and export it to HTML under ``out/``;
6. stop everything and exit non-zero if any step failed.

Usage: ``python -m local.demo [--stack dev] [--out DIR] [--wait-timeout 60]``; the output folder
can also be given as ``NCW_DEMO_OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from function import webhook_settings
from infra.stack_files import PROJECT_DIR
from local.queue_runner import BatchResult
from local.stack import LocalStack
from runbook_lib.notify import netlify_deploy_payload, send_deploy_notification
from runbook_lib.verification import find_invalidation

NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
RUNBOOK = NOTEBOOKS_DIR / "runbook.ipynb"
OUT_ENV = "NCW_DEMO_OUT"
KERNEL = "python3"


class DemoFailed(RuntimeError):
    """A step of the demo did not give the expected result (the message says which and why)."""


@dataclass
class Report:
    notebook: Path
    html: Path
    summary: Path  # the runbook's JSON summary of what it found (its summary_path parameter)

    @classmethod
    def in_folder(cls, out_dir: Path, stack: str) -> Report:
        return cls(
            notebook=out_dir / f"runbook-{stack}.ipynb",
            html=out_dir / f"runbook-{stack}.html",
            summary=out_dir / f"runbook-{stack}.json",
        )

    def clear(self) -> None:
        """Delete an earlier run's files, so whatever exists afterwards is this run's."""
        for path in (self.notebook, self.html, self.summary):
            path.unlink(missing_ok=True)

    def read_summary(self) -> dict | None:
        if not self.summary.is_file():
            return None
        return json.loads(self.summary.read_text(encoding="utf-8"))


def _say(message: str = "") -> None:
    print(message, flush=True)


@contextmanager
def _step(title: str) -> Iterator[None]:
    _say(f"==> {title}")
    started = time.monotonic()
    yield
    _say(f"    done in {time.monotonic() - started:.1f} s")


def send_notification(local: LocalStack) -> tuple[str, object]:
    """Send a signed "deploy succeeded" notification; returns (deploy id, HTTP result)."""
    site_id = local.settings.netlify_site_id or str(uuid.uuid4())
    payload = netlify_deploy_payload(site_id)
    result = send_deploy_notification(
        local.webhook_url, payload, jws_secret=local.jws_secret, host=local.webhook_host
    )
    return payload["id"], result


def find_invalidations(local: LocalStack, deploy_id: str) -> dict[str, Any]:
    """The invalidation made for ``deploy_id`` on each distribution, found as the runbook does
    (``runbook_lib.verification.find_invalidation``, by caller reference)."""
    reference = webhook_settings.caller_reference(deploy_id, local.settings.invalidation_paths)
    cloudfront = local.client("cloudfront")
    found: dict[str, Any] = {}
    for dist_id in local.distribution_ids:
        invalidation = find_invalidation(cloudfront, dist_id, reference)
        if invalidation is not None:
            found[dist_id] = invalidation
    return found


def run_runbook(
    local: LocalStack,
    deploy_id: str,
    out_dir: Path,
    wait_timeout_s: int,
    notification_status: int | None = None,
) -> tuple[Report, Exception | None]:
    """Execute the runbook against ``local``; always writes the notebook and its HTML export."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report.in_folder(out_dir, local.stack)
    report.clear()
    parameters = {
        "stack": local.stack,
        "region": local.region,
        "aws_endpoint_url": local.endpoint_url,
        "distribution_id": local.distribution_ids[0],
        "deploy_id": deploy_id,
        "notification_status": notification_status,  # shown in the report's section 4
        "wait_timeout_s": wait_timeout_s,
        "dry_run": True,
        "summary_path": str(report.summary),
    }
    error: Exception | None = None
    # The kernel inherits the environment of the process that starts it.
    with mock.patch.dict(os.environ, local.environment()):
        try:
            papermill.execute_notebook(
                str(RUNBOOK),
                str(report.notebook),
                parameters=parameters,
                kernel_name=KERNEL,
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
                start_timeout=120,
                execution_timeout=max(300, wait_timeout_s * 3),
            )
        except Exception as failure:  # papermill still writes the notebook up to the failure
            error = failure
    if report.notebook.exists():
        notebook = nbformat.read(report.notebook, as_version=4)
        html, _ = HTMLExporter().from_notebook_node(notebook)
        report.html.write_text(html, encoding="utf-8")
    elif error is None:
        error = DemoFailed(f"papermill wrote no notebook at {report.notebook}")
    return report, error


def runbook_findings(summary: dict | None) -> list[str]:
    """Print what the runbook found; returns the problems (empty when all checks passed)."""
    if summary is None:
        return ["the runbook wrote no summary"]
    problems = []
    trigger = summary.get("trigger") or {}
    verify = summary.get("verify") or {}
    history = summary.get("history") or {}
    if trigger.get("sent"):
        _say(
            f"    runbook: its test notification got HTTP {trigger.get('status')}"
            f" ({'accepted' if trigger.get('accepted') else 'NOT accepted'})"
        )
    else:
        _say(f"    runbook: checked the demo's notification (deploy {trigger.get('deploy_id')})")
    _say(
        f"    runbook: invalidation {verify.get('invalidation_id')} found by "
        f"{verify.get('matched_by')}, status {verify.get('status')}"
        f" after {float(verify.get('elapsed_s') or 0):.1f} s"
    )
    _say(
        f"    runbook: history has {history.get('rows')} invalidation(s)"
        f"{', including that one' if history.get('contains_verified') else ''}"
    )
    if trigger.get("sent") and not trigger.get("accepted"):
        problems.append(f"the runbook's notification was answered HTTP {trigger.get('status')}")
    if not verify.get("completed"):
        problems.append(f"the runbook did not see the invalidation complete: {verify}")
    if not history.get("contains_verified"):
        problems.append("the runbook's history table does not hold the invalidation")
    return problems


def _summary(body: object) -> str:
    if isinstance(body, dict):
        keys = ("status", "result", "message", "reason", "deploy_id")
        shown = {key: body[key] for key in keys if key in body}
        return str(shown or body)
    return repr(body)[:300]


def queue_depths(local: LocalStack) -> tuple[int, int]:
    """(messages in the invalidation queue, in the dead-letter queue), in flight included."""
    sqs = local.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    depths = []
    for url in (local.queue_url, local.dead_letter_queue_url):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        depths.append(sum(int(attributes[name]) for name in names))
    return depths[0], depths[1]


def describe_queued(answer: object) -> list[str]:
    """One line per message the ingest queued (ids, reference, paths: nothing secret)."""
    if not isinstance(answer, dict):
        return []
    lines = []
    for item in answer.get("invalidations") or []:
        if isinstance(item, dict):
            lines.append(
                f"    queued message {item.get('message_id')} for {item.get('distribution_id')}: "
                f"reference {item.get('caller_reference')} paths {item.get('paths')}"
            )
    return lines


def describe_batch(result: BatchResult, worker_name: str) -> list[str]:
    """What the event source mapping stand-in did with one batch."""
    lines = [f"    worker {worker_name} invoked with {len(result.records)} record(s)"]
    for record in result.records:
        try:
            body = json.loads(record.body)
        except ValueError:
            body = {}
        lines.append(
            f"      record {record.message_id} (receive {record.receive_count}): "
            f"deploy {body.get('deploy_id')} distribution {body.get('distribution_id')} "
            f"reference {body.get('caller_reference')} paths {body.get('paths')}"
        )
    outcome = f"      -> {len(result.deleted)} processed (deleted), {len(result.listed)} to retry"
    if result.error:
        outcome += f" ({result.error})"
    for message_id, seconds in result.visibility_s.items():
        outcome += f"; {message_id} back in {seconds} s"
    lines.append(outcome)
    return lines


def demo(stack: str, out_dir: Path, wait_timeout_s: int) -> int:
    started = time.monotonic()
    failures: list[str] = []
    report = Report.in_folder(out_dir, stack)
    report.clear()  # a failed run must not leave an earlier run's report to be taken for its own
    with _step(f"Starting the local stack for Pulumi.{stack}.yaml"):
        # The queue moves when the demo says so, so each hop is shown in order.
        local = LocalStack.start(stack, poll_queue=False)
    try:
        _say(f"    embedded AWS (moto)   {local.endpoint_url}  region {local.region}")
        _say(f"    ALB stand-in          {local.listener_url}  (Host: {local.webhook_host})")
        _say(f"    distributions         {', '.join(local.distribution_ids)}")
        _say(f"    ingest                {local.function_name} (in-process)")
        _say(f"    queue                 {local.queue_url}")
        _say(f"    dead-letter queue     {local.dead_letter_queue_url}")
        _say(f"    worker                {local.worker_function_name} (in-process, queue runner)")

        with _step("Sending a signed deploy notification, as Netlify would"):
            deploy_id, result = send_notification(local)
            status = getattr(result, "status", None)
            answer = getattr(result, "body", None)
            _say(f"    deploy {deploy_id}: HTTP {status} {_summary(answer)}")
            if not isinstance(status, int) or not 200 <= status < 300:
                failures.append(f"the notification was answered with HTTP {status}")
            for line in describe_queued(answer):
                _say(line)
            queued, dead = queue_depths(local)
            _say(f"    the queue holds {queued} message(s), the dead-letter queue {dead}")

        with _step("Running the worker on the queue (the event source mapping stand-in)"):
            assert local.runner is not None
            for batch in local.runner.run_until_idle():
                for line in describe_batch(batch, local.worker_function_name):
                    _say(line)
            queued, dead = queue_depths(local)
            _say(f"    the queue holds {queued} message(s), the dead-letter queue {dead}")
            if queued or dead:
                failures.append(f"{queued} message(s) left in the queue, {dead} dead-lettered")

        with _step("Looking for the invalidation the worker created"):
            reference = webhook_settings.caller_reference(
                deploy_id, local.settings.invalidation_paths
            )
            found = find_invalidations(local, deploy_id)
            _say(f"    caller reference {reference}")
            for dist_id in local.distribution_ids:
                invalidation = found.get(dist_id)
                if invalidation is None:
                    failures.append(f"no invalidation with that reference on {dist_id}")
                    _say(f"    {dist_id}: none found")
                else:
                    _say(
                        f"    {dist_id}: invalidation {invalidation.invalidation_id} "
                        f"status {invalidation.status} paths {list(invalidation.paths)}"
                    )

        with _step("Executing the runbook against the local stack (papermill)"):
            local.runner.start_polling()  # whatever the runbook queues is delivered too
            report, error = run_runbook(local, deploy_id, out_dir, wait_timeout_s, status)
            if error is not None:
                failures.append(f"the runbook failed: {type(error).__name__}: {error}")
            failures += runbook_findings(report.read_summary())
            if report.notebook.exists():  # cleared at the start: this run wrote it
                _say(f"    executed notebook     {report.notebook}")
            if report.html.exists():
                _say(f"    HTML report           {report.html}")
            else:
                failures.append("no HTML report was written")
    finally:
        with _step("Stopping the local stack"):
            local.stop()

    elapsed = time.monotonic() - started
    if failures:
        _say(f"\nDemo FAILED after {elapsed:.1f} s:")
        for failure in failures:
            _say(f"  - {failure}")
        return 1
    _say(f"\nDemo OK in {elapsed:.1f} s. Open the report: {report.html}")
    return 0


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=summary)
    parser.add_argument("--stack", default="dev", help="stack config Pulumi.<stack>.yaml")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get(OUT_ENV) or PROJECT_DIR / "out"),
        help=f"folder for the executed runbook and its HTML export (env {OUT_ENV})",
    )
    parser.add_argument(
        "--wait-timeout", type=int, default=60, help="the runbook's wait_timeout_s parameter"
    )
    args = parser.parse_args(argv)
    try:
        return demo(args.stack, args.out, args.wait_timeout)
    except KeyboardInterrupt:
        _say("\nInterrupted; the local stack was stopped.")
        return 130
    except Exception as error:
        traceback.print_exc()
        _say(f"\nDemo FAILED: {type(error).__name__}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
