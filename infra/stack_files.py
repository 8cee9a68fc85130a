"""Read a stack's config the way the Pulumi CLI hands it to the program.

The CLI merges ``Pulumi.<stack>.yaml`` over the defaults in ``Pulumi.yaml``'s config schema and
passes every value as text (arrays and integers as JSON). Tests and the local stack use this to
run on exactly what a real ``pulumi up`` would see. Encrypted (``secure:``) values cannot be read
without the CLI; they are left out and listed so the caller can supply its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infra.settings import PROJECT

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class StackFiles:
    stack: str
    values: dict[str, str]  # project keys without namespace, defaults applied, CLI text form
    provider: dict[str, str] = field(default_factory=dict)  # e.g. {"aws:region": "eu-west-1"}
    encrypted: tuple[str, ...] = ()  # project keys set with --secret in the file


def _as_cli_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def schema_defaults(project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    return {
        key: _as_cli_text(spec["default"])
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }


def load_stack_files(stack: str = "dev", project_dir: Path = PROJECT_DIR) -> StackFiles:
    """Config of ``Pulumi.<stack>.yaml`` over the schema defaults, as the CLI would apply it."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text()) or {}
    values = schema_defaults(project_dir)
    provider: dict[str, str] = {}
    encrypted: list[str] = []
    for full_key, value in (document.get("config") or {}).items():
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            provider[full_key] = _as_cli_text(value)
        elif isinstance(value, dict) and "secure" in value:
            encrypted.append(key)
        else:
            values[key] = _as_cli_text(value)
    return StackFiles(stack=stack, values=values, provider=provider, encrypted=tuple(encrypted))
