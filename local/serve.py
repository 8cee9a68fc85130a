"""``make local``: start the local stack and keep it running until Ctrl-C.

Prints the environment the runbook reads (``export NAME=value`` lines) so a Jupyter started in
another terminal, or a shell with curl, can use the local stack. The values include the webhook
token and the JWS secret: they belong to this throwaway local stack only.

Usage: ``python -m local.serve [--stack dev]``.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading

from local.stack import LocalStack


def export_lines(environment: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines, shell-quoted, in a stable order."""
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(environment.items())]


def jupyter_hint() -> str:
    # jupyterlab comes with requirements-dev.txt; the headless form is for terminals only.
    return (
        "    venv/bin/jupyter lab notebooks/runbook.ipynb\n"
        "  or run it headless into out/:\n"
        "    mkdir -p out && venv/bin/papermill notebooks/runbook.ipynb "
        "out/runbook-local.ipynb --cwd notebooks"
    )


def serve(stack: str, stop: threading.Event) -> int:
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("    [function] %(levelname)s %(name)s: %(message)s"))
    function_logger = logging.getLogger()
    with LocalStack.start(stack) as local:
        function_logger.addHandler(console)
        try:
            environment = local.environment()
            print(f"Local stack for Pulumi.{stack}.yaml is running.")
            print(
                f"The ingest queues each accepted deploy on {local.names.queue_name}; the queue "
                f"runner hands it to the worker ({local.worker_function_name}) within a second.\n"
            )
            print("# Environment for the runbook. Includes the webhook token and the JWS secret")
            print("# of THIS LOCAL THROWAWAY STACK (fresh on every start; not your real secrets).")
            print("\n".join(export_lines(environment)))
            print(
                "\nOpen the runbook against it: paste the exports above into a new terminal, then"
            )
            print(jupyter_hint())
            print("  (the notebook's parameters left at None read these variables).")
            print("\nSend a notification by hand (unsigned; refused when a JWS secret is set):")
            print(
                f"    curl -si -H 'Host: {local.webhook_host}' -H 'Content-Type: application/json'"
                f" -d '{{}}' \"$NCW_WEBHOOK_URL\""
            )
            print("\nPress Ctrl-C to stop.", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            function_logger.removeHandler(console)
    print("Local stack stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m local.serve", description=summary)
    parser.add_argument("--stack", default="dev", help="stack config Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    # Ctrl-C and `kill` both end the wait below, so the stack always stops cleanly.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return serve(args.stack, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
