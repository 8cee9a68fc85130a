"""The run's summary (JSON-safe, without secrets: the demo, CI and tests read it), its verdict
and the recap that names every section's outcome."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from runbook_lib.config import RunbookConfig
from runbook_lib.history_cost import HistoryResult
from runbook_lib.hooks import NetlifyHooks
from runbook_lib.invalidate import ManualInvalidation
from runbook_lib.logs import Troubleshooting
from runbook_lib.masking import mask_text, mask_url
from runbook_lib.notify import TriggerResult
from runbook_lib.path_health import PathHealth
from runbook_lib.pipeline import PipelineStatus, Redrive, pipeline_summary
from runbook_lib.reconciler import ReconcilerStatus
from runbook_lib.verdict import SKIPPED, Outcome, Verdict, overall
from runbook_lib.verification import Verification
from runbook_lib.where import WhereAmI


def _plain(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records", date_format="iso") or "[]")
    if hasattr(value, "__dataclass_fields__"):
        return {key: _plain(val) for key, val in asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _plain(val) for key, val in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    return value


def _trigger(result: TriggerResult) -> dict[str, Any]:
    response = result.result
    return {
        "mode": result.mode,
        "sent": result.sent,
        "event": result.event,
        "deploy_id": result.deploy_id,
        "status": result.status,
        "accepted": result.accepted,
        "refused": result.refused,
        "body": _plain(response.body) if response else None,
        "error": result.error,
        "skipped": result.skipped,
    }


def _verify(result: Verification) -> dict[str, Any]:
    return {
        "mode": result.mode,
        "verdict": result.verdict,
        "skipped": result.skipped,
        "results": [
            {
                **{key: _plain(value) for key, value in asdict(item).items()},
                "verdict": item.verdict,
            }
            for item in result.results
        ],
    }


def _health(result: PathHealth) -> dict[str, Any]:
    return {
        "verdict": result.verdict,
        "skipped": result.skipped,
        "checks": [_plain(check) for check in result.checks],
        "in_progress": [_plain(item) for item in result.in_progress],
        "distributions": [
            {"distribution_id": d.distribution_id, "flags": d.flags, "error": d.error}
            for d in result.distributions
        ],
    }


def _reconciler(result: ReconcilerStatus) -> dict[str, Any]:
    last = result.last_run
    return {
        "skipped": result.skipped,
        "log_group": result.log_group,
        "runs": len(result.runs),
        "last_run": {
            "time": last.time.isoformat(),
            "fields": json.loads(mask_text(json.dumps(last.fields, default=str))),
        }
        if last
        else None,
        "findings": result.findings(),
        "metrics": _plain(result.metrics),
        "problems": result.problems,
    }


def _manual(result: ManualInvalidation) -> dict[str, Any]:
    return {
        "enabled": result.enabled,
        "paths": list(result.paths),
        "given": result.given,
        "created": result.created,
        "invalidation_ids": result.invalidation_ids,
        "problems": result.problems,
        "skipped": result.skipped,
        "sent": [_plain(item) for item in result.sent],
    }


def _troubleshooting(result: Troubleshooting) -> dict[str, Any]:
    return {
        "skipped": result.skipped,
        "window_hours": result.window_hours,
        "errors": {
            item.role: {
                "log_group": item.log_group,
                "count": len(item.table),
                "message": item.message,
            }
            for item in result.errors
        },
        "terms": [list(term) for term in result.terms],
        "found": dict(result.found),
        "matches": _plain(result.matches),
    }


def _netlify(result: NetlifyHooks) -> dict[str, Any]:
    return {
        "action": result.action,
        "register": result.register,
        "enable_disabled": result.enable_disabled,
        "skipped": result.skipped,
        "refused": result.refused,
        "error": result.error,
        "hooks": [hook.row() | {"hook_id": hook.hook_id} for hook in result.hooks],
    }


def run_summary(
    *,
    config: RunbookConfig,
    where: WhereAmI | None = None,
    health: PathHealth | None = None,
    pipeline: PipelineStatus | None = None,
    redrive_result: Redrive | None = None,
    reconciler: ReconcilerStatus | None = None,
    trigger_result: TriggerResult | None = None,
    verification: Verification | None = None,
    history_result: HistoryResult | None = None,
    manual_result: ManualInvalidation | None = None,
    troubleshooting: Troubleshooting | None = None,
    hooks: NetlifyHooks | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What the run found and did, section by section, with the verdict; no secrets. A section
    not given is named in the recap as not run."""
    sections: list[tuple[str, Any]] = [
        ("where am I", where),
        ("health", health),
        ("pipeline", pipeline),
        ("redrive", redrive_result),
        ("reconciler", reconciler),
        ("trigger", trigger_result),
        ("verify", verification),
        ("history", history_result),
        ("manual invalidation", manual_result),
        ("troubleshooting", troubleshooting),
        ("netlify hooks", hooks),
    ]
    outcomes = [
        part.outcome() if part is not None else Outcome(name, SKIPPED, ["not run"])
        for name, part in sections
    ]
    verdict = overall(outcomes)
    verified = (
        [r.invalidation_id for r in verification.results if r.invalidation_id]
        if (verification)
        else []
    )
    return {
        "stack": config.stack,
        "generated_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "live": config.live,
        "config_source": config.source_summary(),
        "pulumi_note": config.pulumi_note,
        "region": config.region,
        "endpoint": config.endpoint,
        "account": where.account if where else None,
        "stack_account": config.stack_account,
        "webhook_url": mask_url(config.webhook_url),
        "distribution_ids": list(config.distribution_ids),
        "targets": list(config.targets),
        "verdict": verdict.as_json(),
        "health": _health(health) if health else None,
        "pipeline": pipeline_summary(pipeline, redrive_result),
        "reconciler": _reconciler(reconciler) if reconciler else None,
        "trigger": _trigger(trigger_result) if trigger_result else None,
        "verify": _verify(verification) if verification else None,
        "history": {
            "rows": len(history_result.table),
            "invalidation_ids": list(history_result.table["invalidation_id"]),
            "contains_verified": bool(verified)
            and all(history_result.contains(item) for item in verified),
            "usage": _plain(history_result.usage) if history_result.usage else None,
        }
        if history_result
        else None,
        "manual": _manual(manual_result) if manual_result else None,
        "troubleshooting": _troubleshooting(troubleshooting) if troubleshooting else None,
        "netlify": _netlify(hooks) if hooks else None,
    }


def verdict_of(summary: Mapping[str, Any]) -> Verdict:
    """The summary's verdict as a ``Verdict`` again (for ``show_verdict``)."""
    data = summary.get("verdict") or {}
    sections = [
        Outcome(item["section"], item["verdict"], list(item.get("reasons") or []))
        for item in data.get("sections") or []
    ]
    return Verdict(data.get("verdict", "WARN"), list(data.get("reasons") or []), sections)


def write_summary(path: str | os.PathLike | None, summary: Mapping[str, Any]) -> Path | None:
    if not path:
        return None
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return target


def recap(summary: Mapping[str, Any], subject: str | None = None) -> str:
    """Every section's outcome, one line each, in the notebook's order."""
    subject = subject or f"stack `{summary.get('stack')}`"
    lines = [f"**Recap** of {subject} at {summary.get('generated_at')}:"]
    for item in (summary.get("verdict") or {}).get("sections") or []:
        reasons = "; ".join(item.get("reasons") or [])
        lines.append(f"- {item['section']}: **{item['verdict']}**, {reasons}")
    return "\n".join(lines)
