"""The run's summary: JSON-safe, without secrets (the demo and tests read it), and its recap."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from runbook_lib.config import RunbookConfig
from runbook_lib.health import DistributionHealth
from runbook_lib.history_cost import HistoryResult
from runbook_lib.hooks import HookSync
from runbook_lib.invalidate import ManualInvalidation
from runbook_lib.logs import LogErrors
from runbook_lib.masking import mask_url
from runbook_lib.notify import TriggerResult
from runbook_lib.pipeline import PipelineStatus, Redrive, age_text, pipeline_summary
from runbook_lib.verification import VerifyResult


def _plain(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records", date_format="iso") or "[]")
    if hasattr(value, "__dataclass_fields__"):
        return {key: _plain(val) for key, val in asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _plain(val) for key, val in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def run_summary(
    *,
    config: RunbookConfig,
    trigger_result: TriggerResult | None = None,
    verify_result: VerifyResult | None = None,
    history_result: HistoryResult | None = None,
    health: list[DistributionHealth] | None = None,
    manual_result: ManualInvalidation | None = None,
    errors: LogErrors | None = None,
    hook: HookSync | None = None,
    pipeline: PipelineStatus | None = None,
    redrive_result: Redrive | None = None,
    worker_errors: LogErrors | None = None,
) -> dict[str, Any]:
    """What the run found, JSON-safe and without secrets (the demo and tests read it)."""
    response = trigger_result.result if trigger_result else None
    return {
        "stack": config.stack,
        "live": config.live,
        "config_source": config.source_summary(),
        "pulumi_note": config.pulumi_note,
        "webhook_url": mask_url(config.webhook_url),
        "distribution_id": config.distribution_id,
        "trigger": {
            "sent": bool(trigger_result and trigger_result.sent),
            "deploy_id": trigger_result.deploy_id if trigger_result else None,
            "status": trigger_result.status if trigger_result else None,
            "accepted": bool(response and response.accepted),
            "body": _plain(response.body) if response else None,
            "error": trigger_result.error if trigger_result else None,
        },
        "verify": _plain(verify_result) if verify_result else None,
        "health": [
            {"distribution_id": h.distribution_id, "flags": h.flags, "error": h.error}
            for h in health or []
        ],
        "history": {
            "rows": len(history_result.table) if history_result else 0,
            "invalidation_ids": list(history_result.table["invalidation_id"])
            if history_result
            else [],
            "contains_verified": bool(
                history_result
                and verify_result
                and history_result.contains(verify_result.invalidation_id)
            ),
            "usage": _plain(history_result.usage) if history_result else None,
        },
        "manual": {
            "dry_run": manual_result.dry_run,
            "created": manual_result.created,
            "invalidation_id": manual_result.invalidation_id,
            "problems": manual_result.problems,
            "skipped": manual_result.skipped,
        }
        if manual_result
        else None,
        "pipeline": pipeline_summary(pipeline, redrive_result),
        "errors": {"count": len(errors.table), "message": errors.message} if errors else None,
        "worker_errors": {"count": len(worker_errors.table), "message": worker_errors.message}
        if worker_errors
        else None,
        "netlify": {"action": hook.action, "hook_id": hook.hook_id} if hook else None,
    }


def write_summary(path: str | os.PathLike | None, summary: Mapping[str, Any]) -> Path | None:
    if not path:
        return None
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return target


def recap(summary: Mapping[str, Any]) -> str:
    """The run in a few lines, from ``run_summary``."""
    if not summary.get("live"):
        return "**Recap:** nothing was inspected: no stack configured (see section 1)."
    trig, ver = summary["trigger"], summary.get("verify") or {}
    lines = ["**Recap**"]
    if trig["sent"]:
        lines.append(f"- notification for deploy `{trig['deploy_id']}`: answer {trig['status']}")
    elif trig["deploy_id"]:
        answered = f" (answer {trig['status']})" if trig["status"] is not None else ""
        lines.append(f"- deploy `{trig['deploy_id']}` notified by the caller{answered}")
    if ver.get("skipped"):
        lines.append(f"- verify: skipped ({ver['skipped']})")
    elif ver:
        lines.append(
            f"- invalidation `{ver.get('invalidation_id')}`: {ver.get('status')} "
            f"after {ver.get('elapsed_s', 0):.1f} s"
            + (" (timed out)" if ver.get("timed_out") else "")
        )
    lines.append(
        f"- history: {summary['history']['rows']} invalidation(s)"
        + (", including this one" if summary["history"]["contains_verified"] else "")
    )
    flagged = [h["distribution_id"] for h in summary["health"] if h["flags"] or h["error"]]
    lines.append(f"- health: {'flags on ' + ', '.join(flagged) if flagged else 'no flags'}")
    lines.append(f"- pipeline: {_pipeline_line(summary.get('pipeline') or {})}")
    return "\n".join(lines)


def _pipeline_line(pipeline: Mapping[str, Any]) -> str:
    """Section 3 in one line: its verdict, the queue, the dead letters, alarms, the redrive."""
    if not pipeline or pipeline.get("skipped"):
        return f"skipped ({pipeline.get('skipped') or 'not run'})"
    parts = []
    queue = pipeline.get("queue") or {}
    if queue and queue.get("error") is None:
        oldest = queue.get("oldest_age_s")
        parts.append(
            f"{queue.get('visible')} queued, {queue.get('in_flight')} in flight"
            + (f" (oldest {age_text(oldest)})" if oldest is not None else "")
        )
    if pipeline.get("dead_letters") is not None:
        parts.append(f"{pipeline['dead_letters']['count']} dead letter(s)")
    alarms = pipeline.get("alarms") or {}
    if alarms and not alarms.get("error") and not alarms.get("skipped"):
        firing = alarms.get("in_alarm") or []
        parts.append(
            f"{len(firing)} alarm(s) in ALARM" + (f" ({', '.join(firing)})" if firing else "")
        )
    moved = pipeline.get("redrive") or {}
    if moved.get("enabled") and not moved.get("skipped"):
        parts.append(f"{moved.get('moved', 0)} redriven")
    missing = pipeline.get("missing") or []
    if missing:
        parts.append(f"{len(missing)} value(s) unknown")
    return f"{pipeline.get('verdict')}: " + ("; ".join(parts) or "nothing read")
