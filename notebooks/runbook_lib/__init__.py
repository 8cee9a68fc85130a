"""The operator runbook's logic: every notebook section calls one function here.

Each section function returns data (a dataclass, a pandas DataFrame) with an ``outcome()``
(PASS / WARN / FAIL / SKIPPED and why) and never prints secrets; ``show`` turns a result into
notebook output. Nothing here needs a notebook: the tests call the same functions with moto, a
fake clock and a local fake of Netlify's API.

One module a concern, in the notebook's order: ``config`` (where settings come from), ``aws``,
``where`` (section 1), ``path_health`` and ``health`` (2), ``pipeline`` (3), ``reconciler`` (4),
``notify`` (5), ``verification`` (6), ``history_cost`` (7), ``invalidate`` (8), ``logs`` and
``answers`` (9), ``hooks`` (10), then ``summary`` and ``verdict`` (the recap), ``display``, and
``report`` (executes a notebook and writes its HTML report). ``fleet`` serves the fleet view
(``notebooks/fleet.ipynb``); ``masking`` keeps secrets out of all of them. The function's rules
and ``infra`` are imported by package name (the project is installed editable).
"""

from runbook_lib.answers import answers_table
from runbook_lib.aws import AwsClients
from runbook_lib.config import load_config
from runbook_lib.display import show, show_verdict, show_verdict_placeholder
from runbook_lib.history_cost import history, history_chart
from runbook_lib.hooks import connect
from runbook_lib.invalidate import manual
from runbook_lib.logs import troubleshoot
from runbook_lib.notify import netlify_deploy_payload, send_deploy_notification, trigger
from runbook_lib.path_health import path_health
from runbook_lib.pipeline import pipeline_status, redrive
from runbook_lib.reconciler import reconciler_status
from runbook_lib.summary import recap, run_summary, verdict_of, write_summary
from runbook_lib.verdict import VerdictFailed, gate
from runbook_lib.verification import verify
from runbook_lib.where import where_am_i

__all__ = [
    "AwsClients",
    "VerdictFailed",
    "answers_table",
    "connect",
    "gate",
    "history",
    "history_chart",
    "load_config",
    "manual",
    "netlify_deploy_payload",
    "path_health",
    "pipeline_status",
    "recap",
    "reconciler_status",
    "redrive",
    "run_summary",
    "send_deploy_notification",
    "show",
    "show_verdict",
    "show_verdict_placeholder",
    "trigger",
    "troubleshoot",
    "verdict_of",
    "verify",
    "where_am_i",
    "write_summary",
]
