"""The operator runbook's logic: every notebook section calls one function here.

Each section function returns data (a dataclass, a pandas DataFrame) and never prints secrets;
``show`` turns a result into notebook output. Nothing here needs a notebook: the tests call the
same functions with moto, a fake clock and a local fake of Netlify's API.

One module a concern, in the notebook's order: ``config`` (where settings come from), ``aws``,
``where`` (section 1), ``health`` (2), ``notify`` (3), ``verification`` (4), ``history_cost``
(5), ``invalidate`` (6), ``logs`` and ``answers`` (7), ``hooks`` (8), then ``summary`` and
``display``; ``masking`` keeps secrets out of all of them and ``repo`` reaches the function's
rules and ``infra``. The names below are the notebook's ``rb.*``: import from the package, not
from its modules.
"""

from runbook_lib.answers import ANSWERS, answers_table, explain_answer
from runbook_lib.aws import AwsClients
from runbook_lib.config import (
    DEFAULT,
    DEFAULT_REGION,
    ENV,
    ENVIRONMENT,
    LIVE_SOURCES,
    PARAMETER,
    PULUMI,
    STACK_FILE,
    RunbookConfig,
    StackOutputs,
    load_config,
    read_stack_file,
    read_stack_outputs,
)
from runbook_lib.display import show
from runbook_lib.health import DistributionHealth, distribution_health, distributions_health
from runbook_lib.history_cost import (
    FREE_PATHS_PER_MONTH,
    HISTORY_COLUMNS,
    PRICE_PER_PATH_USD,
    USD,
    HistoryResult,
    MonthlyUsage,
    history,
    history_chart,
    invalidation_history,
    monthly_usage,
    paths_cost_usd,
)
from runbook_lib.hooks import (
    NETLIFY_API_URL,
    HookSync,
    NetlifyApiError,
    connect,
    connect_netlify,
    netlify_hook_body,
)
from runbook_lib.invalidate import ManualInvalidation, manual, manual_invalidation, manual_reference
from runbook_lib.logs import (
    ERROR_COLUMNS,
    ERROR_FILTER_PATTERN,
    LogErrors,
    function_errors,
    recent_errors,
)
from runbook_lib.masking import mask_hook, mask_secret, mask_text, mask_url
from runbook_lib.notify import (
    NotificationResult,
    TriggerResult,
    netlify_deploy_payload,
    netlify_signature,
    send_deploy_notification,
    trigger,
)
from runbook_lib.repo import (
    JWS_SECRET_DATA_KEY,
    NETLIFY_EVENT,
    NOTEBOOK_DIR,
    REPO_ROOT,
    caller_reference,
)
from runbook_lib.summary import recap, run_summary, write_summary
from runbook_lib.verification import (
    FoundInvalidation,
    VerifyResult,
    find_invalidation,
    is_completed,
    reference_prefix,
    verify,
    wait_for_invalidation,
)
from runbook_lib.where import WhereAmI, where_am_i

__all__ = [
    "ANSWERS",
    "DEFAULT",
    "DEFAULT_REGION",
    "ENV",
    "ENVIRONMENT",
    "ERROR_COLUMNS",
    "ERROR_FILTER_PATTERN",
    "FREE_PATHS_PER_MONTH",
    "HISTORY_COLUMNS",
    "JWS_SECRET_DATA_KEY",
    "LIVE_SOURCES",
    "NETLIFY_API_URL",
    "NETLIFY_EVENT",
    "NOTEBOOK_DIR",
    "PARAMETER",
    "PRICE_PER_PATH_USD",
    "PULUMI",
    "REPO_ROOT",
    "STACK_FILE",
    "USD",
    "AwsClients",
    "DistributionHealth",
    "FoundInvalidation",
    "HistoryResult",
    "HookSync",
    "LogErrors",
    "ManualInvalidation",
    "MonthlyUsage",
    "NetlifyApiError",
    "NotificationResult",
    "RunbookConfig",
    "StackOutputs",
    "TriggerResult",
    "VerifyResult",
    "WhereAmI",
    "answers_table",
    "caller_reference",
    "connect",
    "connect_netlify",
    "distribution_health",
    "distributions_health",
    "explain_answer",
    "find_invalidation",
    "function_errors",
    "history",
    "history_chart",
    "invalidation_history",
    "is_completed",
    "load_config",
    "manual",
    "manual_invalidation",
    "manual_reference",
    "mask_hook",
    "mask_secret",
    "mask_text",
    "mask_url",
    "monthly_usage",
    "netlify_deploy_payload",
    "netlify_hook_body",
    "netlify_signature",
    "paths_cost_usd",
    "read_stack_file",
    "read_stack_outputs",
    "recap",
    "recent_errors",
    "reference_prefix",
    "run_summary",
    "send_deploy_notification",
    "show",
    "trigger",
    "verify",
    "wait_for_invalidation",
    "where_am_i",
    "write_summary",
]
