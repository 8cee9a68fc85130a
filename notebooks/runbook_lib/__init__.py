"""The operator runbook's logic: every notebook section calls one function here.

Each section function returns data (a dataclass, a pandas DataFrame) and never prints secrets;
``show`` turns a result into notebook output. Nothing here needs a notebook: the tests call the
same functions with moto, a fake clock and a local fake of Netlify's API.

One module a concern, in the notebook's order: ``config`` (where settings come from), ``aws``,
``where`` (section 1), ``health`` (2), ``pipeline`` (3), ``notify`` (4), ``verification`` (5),
``history_cost`` (6), ``invalidate`` (7), ``logs`` and ``answers`` (8), ``hooks`` (9), then
``summary`` and ``display``; ``masking`` keeps secrets out of all of them. The function's rules
and ``infra`` are imported by package name (the project is installed editable). The package
exports what the notebook's cells call (``rb.*``) and what ``local/demo.py`` sends notifications
with; anything else is imported from its module.
"""

from runbook_lib.answers import answers_table
from runbook_lib.aws import AwsClients
from runbook_lib.config import load_config
from runbook_lib.display import show
from runbook_lib.health import distributions_health
from runbook_lib.history_cost import history, history_chart
from runbook_lib.hooks import connect
from runbook_lib.invalidate import manual
from runbook_lib.logs import function_errors, worker_errors
from runbook_lib.notify import netlify_deploy_payload, send_deploy_notification, trigger
from runbook_lib.pipeline import pipeline_status, redrive
from runbook_lib.summary import recap, run_summary, write_summary
from runbook_lib.verification import verify
from runbook_lib.where import where_am_i

__all__ = [
    "AwsClients",
    "answers_table",
    "connect",
    "distributions_health",
    "function_errors",
    "history",
    "history_chart",
    "load_config",
    "manual",
    "netlify_deploy_payload",
    "pipeline_status",
    "recap",
    "redrive",
    "run_summary",
    "send_deploy_notification",
    "show",
    "trigger",
    "verify",
    "where_am_i",
    "worker_errors",
    "write_summary",
]
