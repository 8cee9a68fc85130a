"""Load ``function/webhook_settings.py``: the environment contract the function owns.

The function folder ships to Lambda as-is (its modules import each other flat), so it is not a
package of this program; load the one module by path instead of restating its names here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

FUNCTION_DIR = Path(__file__).resolve().parent.parent / "function"


def _load_webhook_settings():
    name = "webhook_settings"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FUNCTION_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # one module object, shared with the handler when both load
    spec.loader.exec_module(module)
    return module


webhook_settings = _load_webhook_settings()
