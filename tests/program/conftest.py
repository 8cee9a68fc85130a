"""Program runs shared by the tests of this folder (each run costs about a second)."""

from __future__ import annotations

import warnings

import pytest

# pulumi_aws warns about some of its own deprecated classes when a (lazily loaded) submodule is
# first used; load the program's submodules here, quietly, so that noise does not land on the
# first test. Warnings about arguments the program passes are still reported.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_aws as aws

    _ = (aws.lambda_.Function, aws.ec2.SecurityGroup)
from tests.program.program_harness import (
    SHARED_LISTENER_ARN,
    TEST_API_TOKEN,
    TEST_JWS_SECRET,
    TEST_TOKEN,
    ProgramRun,
    run_committed_stack,
    run_program,
)

# Every secret a run may hold, the Netlify API token included.
ALL_SECRETS = {
    "webhookToken": TEST_TOKEN,
    "netlifyJwsSecret": TEST_JWS_SECRET,
    "netlifyApiToken": TEST_API_TOKEN,
}


@pytest.fixture(scope="session")
def own_alb_run() -> ProgramRun:
    """The committed dev stack plus test secrets: this site's own ALB."""
    run = run_program()
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="session")
def shared_run() -> ProgramRun:
    """The dev stack attached to an existing shared HTTPS listener."""
    run = run_program({"listenerArn": SHARED_LISTENER_ARN})
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="session")
def unsigned_run() -> ProgramRun:
    """The dev stack without a JWS secret."""
    run = run_program(secrets={"webhookToken": "Tk_test-0123456789abcdefGHIJ"})
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="session")
def url_run() -> ProgramRun:
    """The committed dev-url stack (endpoint functionUrl) plus test secrets."""
    run = run_committed_stack("dev-url")
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="session")
def reconciler_run() -> ProgramRun:
    """The dev stack (ALB) with a Netlify API token: the reconciler is on."""
    run = run_program(secrets=ALL_SECRETS)
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="session")
def url_reconciler_run() -> ProgramRun:
    """The dev-url stack with a Netlify API token and a 30-minute schedule."""
    run = run_committed_stack("dev-url", {"reconcileMinutes": "30"}, secrets=ALL_SECRETS)
    assert run.error is None, run.error
    return run
