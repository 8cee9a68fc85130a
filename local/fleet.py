"""Several stacks in one process: one embedded AWS (one account), one Netlify fake, a stack each.

``LocalFleet.start(["dev", "dev-url"])`` seeds every stack into the same moto server, as sites
deployed into one account: names differ per stack (``infra.naming`` puts the stack in each), so
queues, parameters, log groups and topics never collide. A CloudFront distribution is an account
resource: when two stack files configure the same id (the example stacks do), the first stack
seeds it and the others share it (``LocalStack.shared_distribution_ids``), as two real stacks
configured so would both invalidate it. Likewise one Netlify site watched by two stacks is one
site in the fake, with each stack's hooks on it.

Each stack runs its own stand-ins (endpoint, queue runner, reconciler); every function runs with
its own environment (``local.lambda_runtime``), so two stacks' copies of one function never see
each other's settings. The process environment holds only the local AWS (and
``NCW_FLEET_FILE``); each stack's runbook variables are in the fleet file,
``{stack: LocalStack.stack_environment()}`` (JSON, readable by its owner only, deleted on stop).
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local.embedded_aws import EmbeddedAws
from local.lambda_runtime import Handler, restore_environment
from local.netlify_fake import NetlifyFake
from local.stack import (
    FLEET_FILE_ENV,
    NETLIFY_API_URL_ENV,
    NETLIFY_AUTH_TOKEN_ENV,
    PROJECT_DIR,
    LocalStack,
    write_fleet_file,
)


def export_lines(environment: Mapping[str, str]) -> list[str]:
    """``export NAME=value`` lines, shell-quoted, in a stable order."""
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(environment.items())]


def write_env_file(path: Path, environment: Mapping[str, str]) -> Path:
    """``environment`` as a shell file to source, readable by its owner only (secrets)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(export_lines(environment)) + "\n")
    return path


def project_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    """Every stack with a ``Pulumi.<stack>.yaml`` in ``project_dir``, sorted by name."""
    return sorted(
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in project_dir.glob("Pulumi.*.yaml")
    )


@dataclass
class LocalFleet:
    """Running local stacks sharing one embedded AWS; ``start()`` it, ``stop()`` it."""

    stacks: dict[str, LocalStack]
    aws: EmbeddedAws | None = None
    netlify: NetlifyFake | None = None
    fleet_file: Path | None = None
    # stack -> a shell file of ``export NAME=value`` lines: that stack's environment.
    env_files: dict[str, Path] = field(default_factory=dict)
    _folder: Path | None = field(default=None, repr=False)
    _saved_environ: dict[str, str | None] = field(default_factory=dict, repr=False)

    @classmethod
    def start(
        cls,
        stacks: Iterable[str] | None = None,
        *,
        project_dir: Path = PROJECT_DIR,
        poll_queue: bool = True,
        invoke: Handler | None = None,
        worker_invoke: Handler | None = None,
        reconciler_invoke: Handler | None = None,
    ) -> LocalFleet:
        """Start ``stacks`` (default: every stack file of the project), in that order.

        Every stack file is read and validated before anything starts; the stand-ins'
        replacements (``invoke``...) apply to every stack (tests only).
        """
        names = list(dict.fromkeys(stacks if stacks is not None else project_stacks(project_dir)))
        if not names:
            raise ValueError(f"no stack to start: no Pulumi.<stack>.yaml in {project_dir}")
        netlify = NetlifyFake()
        prepared = {
            name: LocalStack.prepare(name, project_dir=project_dir, netlify_api_token=netlify.token)
            for name in names
        }
        fleet = cls(stacks=prepared, netlify=netlify)
        try:
            fleet.aws = EmbeddedAws.start(f"fleet {', '.join(names)}", prepared[names[0]].region)
            netlify.start()
            started: list[LocalStack] = []
            for local in prepared.values():
                started.append(local)
                local.start_on(
                    fleet.aws,
                    netlify,
                    process_environment=False,
                    invoke=invoke,
                    worker_invoke=worker_invoke,
                    reconciler_invoke=reconciler_invoke,
                    poll_queue=poll_queue,
                )
            fleet._folder = Path(tempfile.mkdtemp(prefix="ncw-fleet-"))
            fleet.fleet_file = write_fleet_file(fleet._folder, list(prepared.values()))
            for local in prepared.values():
                local.fleet_file = fleet.fleet_file
                fleet.env_files[local.stack] = write_env_file(
                    fleet._folder / f"{local.stack}.env", local.environment()
                )
            fleet._apply_environ({FLEET_FILE_ENV: str(fleet.fleet_file)})
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def stop(self) -> None:
        """Stop every stack, then the Netlify fake and moto; restore the environment."""
        errors: list[Exception] = []
        try:
            for local in reversed(list(self.stacks.values())):
                try:
                    local.stop()
                except Exception as error:  # the others must still stop
                    errors.append(error)
        finally:
            try:
                if self.netlify is not None:
                    self.netlify.stop()
            finally:
                try:
                    if self.aws is not None:
                        self.aws.stop()
                        self.aws = None
                finally:
                    if self._folder is not None:
                        shutil.rmtree(self._folder, ignore_errors=True)
                        self._folder = None
                        self.fleet_file = None
                        self.env_files = {}
                    saved, self._saved_environ = self._saved_environ, {}
                    restore_environment(saved)
        if errors:
            raise errors[0]

    def __enter__(self) -> LocalFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __getitem__(self, stack: str) -> LocalStack:
        return self.stacks[stack]

    def __iter__(self) -> Iterator[LocalStack]:
        return iter(self.stacks.values())

    def __len__(self) -> int:
        return len(self.stacks)

    @property
    def endpoint_url(self) -> str:
        return self.aws.endpoint_url if self.aws else ""

    def environment(self) -> dict[str, str]:
        """The fleet view's environment: the local AWS, the fleet file and the Netlify fake."""
        first = next(iter(self.stacks.values()))
        env = dict(first.aws_environment())
        if self.fleet_file is not None:
            env[FLEET_FILE_ENV] = str(self.fleet_file)
        if self.netlify is not None:
            env[NETLIFY_API_URL_ENV] = self.netlify.api_url
            env[NETLIFY_AUTH_TOKEN_ENV] = self.netlify.token
        return env

    def _apply_environ(self, values: dict[str, str]) -> None:
        for name in values:
            self._saved_environ.setdefault(name, os.environ.get(name))
        os.environ.update(values)
