"""``make local``: start the local stacks and keep them running until Ctrl-C.

Serves every ``Pulumi.<stack>.yaml`` of the project (``--stack NAME``, repeatable, narrows it)
on one embedded AWS and one Netlify fake (``local.fleet``). Prints the environment the runbook
reads (``export NAME=value`` lines, for the first stack; a file to source per stack) so a
Jupyter started in another terminal, or a shell with curl, can use them. The values include
the webhook token and the JWS secret: they belong to these throwaway local stacks only.

Usage: ``python -m local.serve [--stack dev] [--stack dev-url]``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from local.fleet import LocalFleet, export_lines, project_stacks
from local.stack import LocalStack

__all__ = ["export_lines", "main", "serve"]


def jupyter_hint() -> str:
    # jupyterlab comes with the jupyter extra; the headless form is for terminals only.
    return (
        "    make jupyter   # once: installs jupyterlab into venv/\n"
        "    venv/bin/jupyter lab notebooks/runbook.ipynb\n"
        "  or write its report (out/runbook-<stack>-<UTC time>.html) headless:\n"
        '    venv/bin/python -m runbook_lib.report -p stack "$NCW_STACK"'
    )


def curl_hint(local: LocalStack) -> str:
    """A hand-made notification for this stack (unsigned: refused, it has a JWS secret)."""
    host = "" if local.settings.uses_function_url else f"-H 'Host: {local.webhook_host}' "
    return f"    curl -si {host}-H 'Content-Type: application/json' -d '{{}}' \"$NCW_WEBHOOK_URL\""


def describe(local: LocalStack) -> list[str]:
    if local.settings.uses_function_url:
        endpoint = f"function URL stand-in {local.listener_url} (every path reaches the ingest)"
    else:
        endpoint = f"ALB stand-in {local.listener_url} (routes by Host: {local.webhook_host})"
    reconciler = (
        f"reconciler {local.reconciler_function_name} (its schedule does not fire locally: "
        "LocalStack.run_reconciler() runs it)"
        if local.reconciler
        else "no reconciler (no netlifySiteId)"
    )
    return [
        f"  stack {local.stack} ({local.endpoint_mode}): {endpoint}",
        f"    queue {local.names.queue_name}, worker {local.worker_function_name}, {reconciler}",
    ]


def serve(stacks: list[str], stop: threading.Event) -> int:
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("    [function] %(levelname)s %(name)s: %(message)s"))
    function_logger = logging.getLogger()
    with LocalFleet.start(stacks) as fleet:
        function_logger.addHandler(console)
        try:
            assert fleet.netlify is not None
            first = next(iter(fleet))
            print(f"Local stacks running: {', '.join(fleet.stacks)}")
            print(
                f"  embedded AWS (moto) {fleet.endpoint_url}, Netlify API (fake) "
                f"{fleet.netlify.api_url}"
            )
            for local in fleet:
                print("\n".join(describe(local)))
            print(
                "The ingest queues each accepted deploy; each stack's queue runner hands it to "
                "its worker within a second.\n"
            )
            print(f"# Environment for the runbook, stack {first.stack}. Includes the webhook token")
            print("# and the JWS secret of THIS LOCAL THROWAWAY STACK (fresh on every start; not")
            print("# your real secrets). NCW_FLEET_FILE holds every stack's (the fleet view).")
            print("\n".join(export_lines(first.environment())))
            if len(fleet) > 1:
                print("\n# Another stack's environment instead: source its file, e.g.")
                for local in list(fleet)[1:]:
                    print(f"#   . {fleet.env_files[local.stack]}")
            print(
                "\nOpen the runbook against it: paste the exports above into a new terminal, then"
            )
            print(jupyter_hint())
            print("  (the notebook's parameters left empty read these variables).")
            print("\nSend a notification by hand (unsigned; refused when a JWS secret is set):")
            print(curl_hint(first))
            print("\nPress Ctrl-C to stop.", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            function_logger.removeHandler(console)
    print("Local stacks stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m local.serve", description=summary)
    parser.add_argument(
        "--stack",
        action="append",
        help="stack config Pulumi.<stack>.yaml (repeatable; default: every stack file)",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    # Ctrl-C and `kill` both end the wait below, so the stacks always stop cleanly.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return serve(args.stack or project_stacks(), stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
