"""``make demo``: the whole flow on an embedded AWS for every site stack, then every report.

1. start the local stacks (default: every ``Pulumi.<stack>.yaml``; ``--stack`` narrows it) on
   one embedded AWS and one Netlify fake (``local.fleet``);
2. a missed notification: Netlify publishes a deploy (20 minutes ago, past the reconciler's
   grace period) and tells nobody; each stack's reconciler finds it and queues it, the worker
   invalidates it, and a second run finds it covered and queues nothing;
3. a disabled hook: Netlify switches off one of the first stack's hooks; its reconciler
   reports it (the others report theirs healthy);
4. a deploy as Netlify does it: the fake publishes a deploy and sends the signed
   ``deploy_created`` notification to every enabled hook (through each stack's endpoint
   stand-in: the ALB listener or the function URL); each ingest queues one message per
   distribution, the worker invalidates, and the invalidations are found by their caller
   reference;
5. executes the site runbook (``notebooks/runbook.ipynb``) for each stack and the fleet view
   (``notebooks/fleet.ipynb``) with papermill, and writes their reports under ``out/``:
   ``runbook-<stack>-<UTC stamp>.{html,ipynb,json}`` and ``fleet-<stamp>.{html,ipynb,json}``;
6. stops everything; exits non-zero if any step failed or a report's verdict is FAIL.

Usage: ``python -m local.demo [--stack NAME ...] [--out DIR] [--wait-timeout 60]
[--no-reports]``; the output folder can also be given as ``NCW_DEMO_OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from function import webhook_settings
from infra.netlify_hook import EVENT, RESTORED_EVENT
from infra.stack_files import PROJECT_DIR
from local.fleet import LocalFleet, project_stacks
from local.lambda_runtime import environment_applied
from local.netlify_fake import Delivery, deploy_object
from local.queue_runner import BatchResult
from local.stack import LocalStack

NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
RUNBOOK = NOTEBOOKS_DIR / "runbook.ipynb"
FLEET_VIEW = NOTEBOOKS_DIR / "fleet.ipynb"
OUT_ENV = "NCW_DEMO_OUT"
# Older than the reconciler's grace period (15 minutes): a notification can no longer be on its
# way, so the reconciler acts.
MISSED_PUBLISH_AGE = timedelta(minutes=20)


class DemoFailed(RuntimeError):
    """A step of the demo did not give the expected result (the message says which and why)."""


def _say(message: str = "") -> None:
    print(message, flush=True)


@contextmanager
def _step(title: str) -> Iterator[None]:
    _say(f"==> {title}")
    started = time.monotonic()
    yield
    _say(f"    done in {time.monotonic() - started:.1f} s")


# -- what the demo reads back -----------------------------------------------------------------


def find_invalidations(local: LocalStack, deploy_id: str) -> dict[str, list[dict[str, Any]]]:
    """Distribution -> the invalidations whose caller reference is one of ``deploy_id``'s
    (``webhook_settings.reference_prefix``: the digest varies with event and publish time)."""
    prefix = webhook_settings.reference_prefix(deploy_id)
    cloudfront = local.client("cloudfront")
    found: dict[str, list[dict[str, Any]]] = {}
    for dist_id in local.distribution_ids:
        listed = cloudfront.list_invalidations(DistributionId=dist_id)["InvalidationList"]
        batches = [
            cloudfront.get_invalidation(DistributionId=dist_id, Id=item["Id"])["Invalidation"]
            for item in listed.get("Items") or []
        ]
        found[dist_id] = [
            batch
            for batch in batches
            if batch["InvalidationBatch"]["CallerReference"].startswith(prefix)
        ]
    return found


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
                f"      queued message {item.get('message_id')} for {item.get('distribution_id')}"
                f": reference {item.get('caller_reference')} paths {item.get('paths')}"
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
    lines.append(outcome)
    return lines


def describe_run(local: LocalStack, summary: dict[str, Any]) -> str:
    """One line for one reconciler run (its summary holds no secret)."""
    hooks = summary.get("hooks") or {}
    hook_text = ", ".join(f"{event} {state}" for event, state in hooks.items()) or "not read"
    return (
        f"    {local.stack}: {summary.get('outcome')}: publish of deploy "
        f"{summary.get('deploy_id')} {summary.get('publish')}, "
        f"{summary.get('missed_publishes')} message(s) queued, hooks: {hook_text}, "
        f"{summary.get('netlify_api_errors')} Netlify API error(s)"
    )


def _summary_text(body: object) -> str:
    if isinstance(body, dict):
        keys = ("status", "reason", "deploy_id")
        return str({key: body[key] for key in keys if key in body} or body)
    return repr(body)[:300]


# -- the steps ---------------------------------------------------------------------------------


def run_workers(fleet: LocalFleet, failures: list[str]) -> list[BatchResult]:
    """Each stack's queue runner until its queue is idle; both queues must end empty."""
    results: list[BatchResult] = []
    for local in fleet:
        assert local.runner is not None
        for batch in local.runner.run_until_idle():
            results.append(batch)
            for line in describe_batch(batch, local.worker_function_name):
                _say(line)
        queued, dead = queue_depths(local)
        _say(
            f"    {local.stack}: the queue holds {queued} message(s), the dead-letter queue {dead}"
        )
        if queued or dead:
            failures.append(f"{local.stack}: {queued} message(s) left, {dead} dead-lettered")
    return results


def check_invalidated(fleet: LocalFleet, deploy_ids: dict[str, str], failures: list[str]) -> None:
    """Every distribution of every stack has an invalidation for the stack's deploy."""
    for local in fleet:
        deploy_id = deploy_ids.get(local.stack)
        if deploy_id is None:
            continue
        found = find_invalidations(local, deploy_id)
        for dist_id, batches in found.items():
            if not batches:
                failures.append(
                    f"{local.stack}: no invalidation of deploy {deploy_id} on {dist_id}"
                )
                _say(f"    {local.stack} {dist_id}: none found for deploy {deploy_id}")
            for batch in batches:
                reference = batch["InvalidationBatch"]["CallerReference"]
                _say(
                    f"    {local.stack} {dist_id}: invalidation {batch['Id']} status "
                    f"{batch['Status']} reference {reference} "
                    f"paths {batch['InvalidationBatch']['Paths'].get('Items')}"
                )
            references = [b["InvalidationBatch"]["CallerReference"] for b in batches]
            if len(references) > len(set(references)):
                _say(
                    "      (one reference, several invalidations: moto does not deduplicate "
                    "CallerReference; CloudFront returns the first invalidation instead)"
                )


def missed_publish(fleet: LocalFleet, failures: list[str]) -> dict[str, str]:
    """Step 2; returns stack -> the missed deploy's id, for the stacks with a reconciler."""
    assert fleet.netlify is not None
    reconciled = [local for local in fleet if local.reconciler is not None]
    for local in fleet:
        if local.reconciler is None:
            _say(f"    {local.stack}: no reconciler (no netlifySiteId): skipped")
    published: dict[str, dict[str, Any]] = {}
    for local in reconciled:
        site_id = str(local.settings.netlify_site_id)
        if site_id not in published:
            published[site_id] = fleet.netlify.publish(
                site_id,
                published_at=datetime.now(UTC) - MISSED_PUBLISH_AGE,
                title="Published while the webhook was unreachable",
            )
            _say(
                f"    site {site_id}: deploy {published[site_id]['id']} published at "
                f"{published[site_id]['published_at']}; no notification was sent"
            )
    missed: dict[str, str] = {}
    for local in reconciled:
        deploy_id = published[str(local.settings.netlify_site_id)]["id"]
        summary = local.run_reconciler()
        _say(describe_run(local, summary))
        missed[local.stack] = deploy_id
        if summary.get("publish") != "missed" or not summary.get("missed_publishes"):
            failures.append(f"{local.stack}: the reconciler did not queue the missed publish")
    return missed


def second_runs(fleet: LocalFleet, failures: list[str]) -> None:
    """Step 3: a hook switched off by Netlify, and every reconciler run again."""
    assert fleet.netlify is not None
    reconciled = [local for local in fleet if local.reconciler is not None]
    if not reconciled:
        _say("    no stack has a reconciler: skipped")
        return
    switched_off = reconciled[0]
    hook_id = switched_off.hook_ids[RESTORED_EVENT]
    fleet.netlify.disable_hook(hook_id)
    _say(f"    Netlify disabled hook {hook_id} ({RESTORED_EVENT}) of stack {switched_off.stack}")
    for local in reconciled:
        summary = local.run_reconciler()
        _say(describe_run(local, summary))
        if summary.get("missed_publishes"):
            failures.append(f"{local.stack}: the reconciler queued the same publish twice")
        expected = 1 if local is switched_off else 0
        if summary.get("unhealthy_hooks") != expected:
            failures.append(
                f"{local.stack}: the reconciler reported {summary.get('unhealthy_hooks')} "
                f"unhealthy hook(s), not {expected}"
            )
        if local is switched_off and hook_id not in (summary.get("disabled_hook_ids") or []):
            failures.append(f"{local.stack}: the disabled hook {hook_id} was not named")


def notify_deploys(fleet: LocalFleet, failures: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    """Step 4; returns (stack -> deploy id, stack -> the HTTP status its notification got)."""
    assert fleet.netlify is not None
    deploy_ids: dict[str, str] = {}
    statuses: dict[str, int] = {}
    endpoints = {local.webhook_endpoint: local for local in fleet}
    sites: dict[str, dict[str, Any]] = {}
    for local in fleet:
        site_id = local.settings.netlify_site_id
        if site_id and site_id not in sites:
            sites[site_id] = fleet.netlify.publish(site_id, title="Local demo deploy")
    deliveries: list[Delivery] = []
    for site_id, deploy in sites.items():
        _say(f"    site {site_id}: deploy {deploy['id']} published; notifying its hooks")
        deliveries += fleet.netlify.notify(site_id, EVENT, deploy)
    for local in fleet:
        if not local.settings.netlify_site_id:
            # No site in the fake for it: deliver as Netlify would to its webhook URL.
            deploy = deploy_object("any-site", f"ncw-local-{local.stack}")
            deliveries.append(
                fleet.netlify.deliver(
                    local.webhook_url,
                    EVENT,
                    deploy,
                    secret=local.jws_secret,
                    host=None if local.settings.uses_function_url else local.rule.host,
                )
            )
            local_deploy = deploy
        else:
            local_deploy = sites[local.settings.netlify_site_id]
        deploy_ids[local.stack] = str(local_deploy["id"])
    for delivery in deliveries:
        local = endpoints.get(delivery.endpoint)
        name = local.stack if local else delivery.endpoint
        _say(
            f"    -> {name} ({local.endpoint_mode if local else '?'}): {delivery.event} "
            f"HTTP {delivery.status} {_summary_text(delivery.body)}"
            + (f" ({delivery.error})" if delivery.error else "")
        )
        for line in describe_queued(delivery.body):
            _say(line)
        if local is not None and delivery.status is not None:
            statuses[local.stack] = delivery.status
        if delivery.status is None or not 200 <= delivery.status < 300:
            failures.append(f"{name}: the notification was answered HTTP {delivery.status}")
    for local in fleet:
        if local.stack not in statuses:
            failures.append(f"{local.stack}: no notification reached it")
    return deploy_ids, statuses


def notebook_parameters(notebook: Path, wanted: dict[str, Any]) -> dict[str, Any]:
    """The ``wanted`` parameters the notebook declares (papermill would inject the others as
    unknown names, which a notebook that changed its parameters would silently ignore)."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: value for name, value in wanted.items() if name in declared}


def write_reports(
    fleet: LocalFleet,
    deploy_ids: dict[str, str],
    statuses: dict[str, int],
    out_dir: Path,
    wait_timeout_s: int,
    failures: list[str],
) -> list[Path]:
    """Step 5: every stack's runbook report, then the fleet view's; returns the HTML files."""
    from runbook_lib.report import write_fleet_report, write_report

    now = datetime.now(UTC)  # one stamp for every report of this run
    written: list[Path] = []
    for local in fleet:
        assert local.runner is not None
        local.runner.start_polling()  # whatever the runbook queues is delivered too
    for local in fleet:
        parameters = notebook_parameters(
            RUNBOOK,
            {
                "stack": local.stack,
                "deploy_id": deploy_ids.get(local.stack, ""),
                "notification_status": statuses.get(local.stack, 0),
                "wait_timeout_s": wait_timeout_s,
            },
        )
        # The kernel inherits this process's environment: the stack's, applied so that no
        # function invocation runs while it is switched (local.lambda_runtime).
        with environment_applied(local.environment()):
            report = write_report(parameters, out_dir=out_dir, now=now)
        written += _show_report(f"runbook of {local.stack}", report, failures)
    if not FLEET_VIEW.is_file():
        _say(f"    the fleet view was skipped: {FLEET_VIEW} does not exist (yet)")
        return written
    with environment_applied(fleet.environment()):
        report = write_fleet_report(
            notebook_parameters(FLEET_VIEW, {"stacks": ",".join(fleet.stacks)}),
            out_dir=out_dir,
            now=now,
        )
    written += _show_report("fleet view", report, failures)
    return written


def _show_report(name: str, report: Any, failures: list[str]) -> list[Path]:
    _say(f"    {name}: verdict {report.verdict or 'not reached'}")
    for reason in report.reasons:
        _say(f"      - {reason}")
    for label, path in (("report", report.html), ("notebook", report.notebook)):
        if path.exists():
            _say(f"      {label:9} {path}")
    if report.summary.exists():
        _say(f"      {'summary':9} {report.summary}")
    if not report.ok:
        error = report.error
        detail = f": {type(error).__name__}: {str(error)[:300]}" if error else ""
        failures.append(f"the {name} did not pass (verdict {report.verdict}){detail}")
    if not report.html.exists():
        failures.append(f"the {name} wrote no HTML report")
        return []
    return [report.html]


# -- the whole demo ----------------------------------------------------------------------------


def demo(stacks: list[str], out_dir: Path, wait_timeout_s: int, reports: bool = True) -> int:
    started = time.monotonic()
    failures: list[str] = []
    written: list[Path] = []
    with _step(f"Starting the local stacks: {', '.join(stacks)}"):
        # The queues move when the demo says so, so each hop is shown in order.
        fleet = LocalFleet.start(stacks, poll_queue=False)
    try:
        assert fleet.netlify is not None
        _say(f"    embedded AWS (moto)   {fleet.endpoint_url}")
        _say(f"    Netlify API (fake)    {fleet.netlify.api_url}")
        for local in fleet:
            shared = (
                f" ({', '.join(local.shared_distribution_ids)} also another stack's: one "
                "distribution in the account, both invalidate it)"
                if local.shared_distribution_ids
                else ""
            )
            endpoint = (
                f"function URL stand-in {local.listener_url}"
                if local.settings.uses_function_url
                else f"ALB stand-in {local.listener_url} (Host: {local.webhook_host})"
            )
            _say(f"    stack {local.stack}: {endpoint}")
            _say(f"      distributions {', '.join(local.distribution_ids)}{shared}")
            _say(
                f"      ingest {local.function_name}, worker {local.worker_function_name}, "
                f"reconciler {local.reconciler_function_name if local.reconciler else 'none'}"
            )

        with _step("Netlify publishes a deploy and tells nobody (a missed notification)"):
            missed = missed_publish(fleet, failures)
        with _step("The worker invalidates what the reconcilers queued"):
            run_workers(fleet, failures)
            check_invalidated(fleet, missed, failures)
        with _step("Netlify switches a hook off; the reconcilers run again"):
            second_runs(fleet, failures)
        with _step("Netlify publishes a deploy and notifies every enabled hook (signed)"):
            deploy_ids, statuses = notify_deploys(fleet, failures)
        with _step("The worker invalidates what the ingests queued"):
            run_workers(fleet, failures)
            check_invalidated(fleet, deploy_ids, failures)
        if reports:
            with _step("Executing the runbooks and the fleet view (papermill)"):
                written = write_reports(
                    fleet, deploy_ids, statuses, out_dir, wait_timeout_s, failures
                )
    finally:
        with _step("Stopping the local stacks"):
            fleet.stop()

    elapsed = time.monotonic() - started
    if failures:
        _say(f"\nDemo FAILED after {elapsed:.1f} s:")
        for failure in failures:
            _say(f"  - {failure}")
        return 1
    _say(f"\nDemo OK in {elapsed:.1f} s.")
    for path in written:
        _say(f"  {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=summary)
    parser.add_argument(
        "--stack",
        action="append",
        help="stack config Pulumi.<stack>.yaml (repeatable; default: every stack file)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get(OUT_ENV) or PROJECT_DIR / "out"),
        help=f"folder for the reports (env {OUT_ENV})",
    )
    parser.add_argument(
        "--wait-timeout", type=int, default=60, help="the runbook's wait_timeout_s parameter"
    )
    parser.add_argument(
        "--no-reports", action="store_true", help="run the flow only, no runbook or fleet view"
    )
    args = parser.parse_args(argv)
    stacks = args.stack or project_stacks()
    try:
        return demo(stacks, args.out, args.wait_timeout, reports=not args.no_reports)
    except KeyboardInterrupt:
        _say("\nInterrupted; the local stacks were stopped.")
        return 130
    except Exception as error:
        traceback.print_exc()
        _say(f"\nDemo FAILED: {type(error).__name__}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
