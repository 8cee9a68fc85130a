"""Shared test setup: fake AWS credentials (never a real account).

The project is installed into venv/ in editable mode, so tests import every part by its package
name (``function.handler``, ``infra.settings``, ``runbook_lib``, ``tests.function.*``).
"""

from __future__ import annotations

import os

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
