"""Shared test setup: fake AWS credentials (never a real account) and import paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# function/ ships as a bare folder whose modules import each other flat; notebooks/ holds the
# runbook's module. Tests import both the way their runtimes do.
for folder in (ROOT / "function", ROOT / "notebooks", ROOT):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# Set before any boto3 client exists, so nothing can reach a real AWS account.
for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[name] = value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
