"""What the runbook takes from the rest of the repository: the function's rules and ``infra``.

The notebook's kernel runs with cwd ``notebooks/``, so the repository root and ``function/`` are
put on ``sys.path`` here, before anything is imported from them; the other modules import those
names from this one, so the order of their imports cannot break it.
"""

from __future__ import annotations

import sys
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = NOTEBOOK_DIR.parent
# function/ ships to Lambda as a bare folder; the runbook reuses its path rules and caller
# reference so that "validated like the function" and "found by its reference" stay true. The
# repository root holds infra/, whose hooks-API body the runbook shares with the program.
for _folder in (REPO_ROOT / "function", REPO_ROOT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import webhook_settings  # noqa: E402  (needs the sys.path entry above)

from infra import netlify_hook  # noqa: E402  (needs the sys.path entry above)
from infra.runbook_env import RUNBOOK_ENV  # noqa: E402, F401  (re-exported for config)

caller_reference = webhook_settings.caller_reference
NETLIFY_EVENT = netlify_hook.EVENT
JWS_SECRET_DATA_KEY = netlify_hook.JWS_SECRET_DATA_KEY
