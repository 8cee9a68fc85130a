"""Where the runbook's settings come from (section 1), and that each source is named honestly."""

from __future__ import annotations

import json
import subprocess

import pytest

from runbook_lib import config as rb_config
from runbook_lib.config import (
    DEFAULT,
    FLEET_FILE,
    FLEET_FILE_VARIABLE,
    NO_PULUMI,
    PARAMETER,
    PULUMI,
    STACK_FILE,
    StackOutputs,
    account_of,
    as_list,
    list_stacks,
    load_config,
    read_stack_outputs,
    source_kind,
)
from runbook_lib.history_cost import history
from runbook_lib.masking import mask_url
from runbook_lib.notify import trigger
from runbook_lib.path_health import path_health
from runbook_lib.where import where_am_i

TOKEN = "Tok3n-abcdefghijklmnopqrstuvwxyz"
JWS = "jws-secret-abcdefghijklmnopqrstuvwxyz012345"
NO_OUTPUTS = StackOutputs(None, "n/a")


def _load(stack="dev", environ=None, **kwargs):
    return load_config(stack, environ=environ or {}, stack_outputs=NO_OUTPUTS, **kwargs)


def test_config_from_environment_is_live_and_names_each_variable():
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5555",
        "NCW_WEBHOOK_URL": f"http://127.0.0.1:8080/webhooks/netlify?token={TOKEN}",
        "NCW_WEBHOOK_HOST": "lambda.example.com",
        "NCW_JWS_SECRET": JWS,
        "NCW_DISTRIBUTION_IDS": "EAAA1, EBBB2",
        "NCW_FUNCTION_NAME": "ncw-dev",
    }
    config = _load(environ=env)
    assert config.live
    assert config.distribution_ids == ("EAAA1", "EBBB2")
    assert config.targets == ("EAAA1", "EBBB2")  # every distribution unless one is named
    assert config.log_group == "/aws/lambda/ncw-dev"
    assert config.sources["webhook_url"] == "environment NCW_WEBHOOK_URL"
    assert config.sources["distribution_ids"] == "environment NCW_DISTRIBUTION_IDS"
    assert config.sources["invalidation_paths"] == STACK_FILE  # Pulumi.dev.yaml
    assert config.sources["log_group"] == "derived from the function name"
    assert TOKEN not in repr(config) and JWS not in repr(config)


@pytest.mark.parametrize(
    ("parameter", "environ", "stack", "source"),
    [
        (None, {}, "dev", DEFAULT),
        ("", {"NCW_STACK": "prod"}, "prod", "environment NCW_STACK"),
        ("staging", {"NCW_STACK": "prod"}, "staging", PARAMETER),
    ],
)
def test_the_stack_row_names_where_the_stack_came_from(parameter, environ, stack, source):
    config = _load(parameter, environ)
    assert (config.stack, config.sources["stack"]) == (stack, source)
    rows = {what: where for what, _value, where in where_am_i(config).rows}
    assert rows["stack"] == source


def test_the_stack_region_wins_over_the_shell_region():
    # Pulumi.dev.yaml says us-east-1; the shell's AWS_REGION belongs to any account.
    shell = _load(environ={"AWS_REGION": "eu-west-1"})
    assert (shell.region, shell.sources["region"]) == ("us-east-1", STACK_FILE)
    exported = _load(environ={"AWS_REGION": "eu-west-1", "NCW_REGION": "ap-south-1"})
    assert (exported.region, exported.sources["region"]) == ("ap-south-1", "environment NCW_REGION")
    output = load_config(
        "dev",
        environ={"NCW_REGION": "ap-south-1"},
        stack_outputs=StackOutputs({"region": "eu-central-1"}, "pulumi"),
    )
    assert (output.region, output.sources["region"]) == (
        "eu-central-1",
        "pulumi stack output region",
    )
    no_file = _load("nostack", environ={"AWS_DEFAULT_REGION": "sa-east-1"})
    assert no_file.sources["region"] == "environment AWS_DEFAULT_REGION"


def test_parameters_win_over_environment():
    env = {"NCW_DISTRIBUTION_IDS": "EAAA1,EBBB2", "NCW_WEBHOOK_URL": "http://a/x?token=1"}
    config = _load(
        region="ap-south-1", webhook_url="http://b/y?token=2", distribution_id="EBBB2", environ=env
    )
    assert config.webhook_url == "http://b/y?token=2"
    assert config.sources["webhook_url"] == PARAMETER
    assert config.targets == ("EBBB2",) and config.distribution_ids == ("EAAA1", "EBBB2")
    assert config.region == "ap-south-1"


def test_stack_outputs_are_used_when_the_pulumi_cli_answers():
    outputs = {
        "webhook_url": f"https://lambda.example.com/webhooks/netlify?token={TOKEN}",
        "netlify_hooks": [
            {
                "type": "url",
                "event": event,
                "data": {"url": "https://lambda.example.com/x", "signature_secret": JWS},
            }
            for event in ("deploy_created", "deploy_restored")
        ],
        "distribution_ids": ["EOUT1"],
        "function_name": "fn",
        "function_arn": "arn:aws:lambda:eu-west-1:210987654321:function:fn",
        "log_group_name": "/aws/lambda/fn-group",
        "secrets_parameter_name": "/ncw/dev/secrets",
        "endpoint": "functionUrl",
        "reconciler_function_name": "fn-reconciler",
        "reconciler_log_group_name": "/aws/lambda/fn-reconciler",
    }
    calls = []

    def run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout=json.dumps(outputs), stderr="")

    read = read_stack_outputs("prod", which=lambda name: "/usr/bin/pulumi", run=run)
    config = load_config("prod", environ={}, stack_outputs=read)
    assert calls == [
        ["/usr/bin/pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "prod"]
    ]
    assert "--show-secrets" not in read.note  # the note is shown: it names the command only
    assert config.live and config.source_summary() == f"{PARAMETER}, {PULUMI}"
    assert config.distribution_ids == ("EOUT1",)
    assert config.jws_secret == JWS and len(config.netlify_hooks) == 2
    assert config.log_group == "/aws/lambda/fn-group"
    assert config.secrets_parameter == "/ncw/dev/secrets"
    assert config.endpoint == "functionUrl"
    assert config.reconciler_log_group == "/aws/lambda/fn-reconciler"
    assert config.stack_account == "210987654321"
    assert config.sources["stack_account"] == "pulumi stack output function_arn"


@pytest.mark.parametrize(
    ("value", "account"),
    [
        ("arn:aws:sns:us-east-1:123456789012:alarms", "123456789012"),
        ("arn:aws-cn:lambda:cn-north-1:210987654321:function:f", "210987654321"),
        ("https://sqs.eu-west-1.amazonaws.com/111122223333/q", "111122223333"),
        ("arn:aws:cloudfront::123:distribution/E1", None),
        (None, None),
    ],
)
def test_the_account_is_read_from_an_arn_or_a_queue_url(value, account):
    assert account_of(value) == account


def test_list_parameters_accept_a_comma_separated_string():
    assert as_list("/about/index.html") == ["/about/index.html"]  # not 17 one-letter paths
    assert as_list(" /a, /b ,,/c ") == ["/a", "/b", "/c"]
    assert as_list(["/a", " ", "/b"]) == ["/a", "/b"]
    assert as_list(None) == [] and as_list("") == []


def test_pulumi_stack_ls_lists_the_project_stacks():
    listed = [{"name": "dev", "current": True}, {"name": "prod"}, {"nothing": 1}]

    def run(args, **kwargs):
        assert args[1:] == ["stack", "ls", "--json"]
        return subprocess.CompletedProcess(args, 0, stdout=json.dumps(listed), stderr="")

    names, note = list_stacks(which=lambda name: "/bin/pulumi", run=run, environ={})
    assert names == ["dev", "prod"] and note == "pulumi stack ls --json"
    none, why = list_stacks(which=lambda name: "/bin/pulumi", run=run, environ={NO_PULUMI: "1"})
    assert none == [] and NO_PULUMI in why


def test_a_local_endpoint_never_mixes_with_the_real_stack_outputs(monkeypatch):
    monkeypatch.setattr(rb_config.shutil, "which", lambda name: "/usr/bin/pulumi")
    monkeypatch.setattr(
        rb_config.subprocess, "run", lambda *a, **k: pytest.fail("pulumi was called")
    )
    config = load_config("dev", aws_endpoint_url="http://127.0.0.1:5000", environ={})
    assert config.aws_endpoint_url == "http://127.0.0.1:5000"
    assert "AWS_ENDPOINT_URL is set" in config.pulumi_note


def test_missing_pulumi_cli_is_reported_not_fatal():
    read = read_stack_outputs("dev", which=lambda name: None)
    assert read.outputs is None and "not on PATH" in read.note


@pytest.fixture
def fake_pulumi_on_path(tmp_path, monkeypatch):
    """A ``pulumi`` first on PATH that leaves a mark and prints a stack's outputs."""
    mark = tmp_path / "pulumi-ran"
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir()
    outputs = json.dumps({"webhook_url": f"https://real.example.com/x?token={TOKEN}"})
    script.write_text(f"#!/bin/sh\ntouch '{mark}'\necho '{outputs}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    monkeypatch.delenv(NO_PULUMI, raising=False)
    return mark


def test_the_opt_out_variable_keeps_a_pulumi_on_path_from_running(fake_pulumi_on_path, monkeypatch):
    ran = read_stack_outputs("dev")
    assert ran.outputs and fake_pulumi_on_path.exists()  # the fake is found and runs...
    fake_pulumi_on_path.unlink()
    monkeypatch.setenv(NO_PULUMI, "1")
    read = read_stack_outputs("dev")
    assert read.outputs is None and NO_PULUMI in read.note
    assert not fake_pulumi_on_path.exists()  # ...but not with the opt-out set
    config = load_config("dev", environ={NO_PULUMI: "1"})
    assert not config.live and not config.webhook_url and not fake_pulumi_on_path.exists()


def test_a_token_less_webhook_url_parameter_takes_the_token_from_the_environment():
    env = {"NCW_WEBHOOK_URL": f"https://lambda.example.com/webhooks/netlify?token={TOKEN}"}
    config = _load(webhook_url="https://lambda.example.com/webhooks/netlify", environ=env)
    assert config.webhook_url == env["NCW_WEBHOOK_URL"]
    assert config.sources["webhook_url"] == PARAMETER and config.live
    assert config.sources["webhook_token"] == "environment NCW_WEBHOOK_URL"
    assert config.webhook_endpoint == "https://lambda.example.com/webhooks/netlify"


def test_a_token_less_webhook_url_parameter_prefers_the_stack_output_token():
    outputs = {"webhook_url": "https://lambda.example.com/webhooks/netlify?token=from%2Fstack"}
    config = load_config(
        "prod",
        webhook_url="https://other.example.com/webhooks/netlify?dist=E1",
        environ={"NCW_WEBHOOK_URL": "https://x/y?token=from-env"},
        stack_outputs=StackOutputs(outputs, "pulumi"),
    )
    assert (
        config.webhook_url
        == "https://other.example.com/webhooks/netlify?dist=E1&token=from%2Fstack"
    )
    assert source_kind(config.sources["webhook_token"]) == PULUMI


def test_a_webhook_url_parameter_with_its_own_token_is_used_as_given():
    config = _load(
        webhook_url="https://b/y?Token=2", environ={"NCW_WEBHOOK_URL": "https://a/x?token=1"}
    )
    assert config.webhook_url == "https://b/y?Token=2" and "webhook_token" not in config.sources


def test_the_fleet_file_entry_of_the_named_stack_is_read(tmp_path):
    fleet = {
        "dev": {"NCW_STACK": "dev", "NCW_DISTRIBUTION_IDS": "EDEV1", "NCW_ENDPOINT": "alb"},
        "dev-url": {
            "NCW_STACK": "dev-url",
            "NCW_DISTRIBUTION_IDS": "EURL1,EURL2",
            "NCW_ENDPOINT": "functionUrl",
            "NCW_RECONCILER_FUNCTION_NAME": "",  # "" = not set for this stack
        },
    }
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(fleet))
    # The process environment holds another stack's variables: they must not leak in.
    env = {FLEET_FILE_VARIABLE: str(path), "NCW_STACK": "dev", "NCW_QUEUE_URL": "http://q/1/dev"}
    config = _load("dev-url", env)
    assert config.distribution_ids == ("EURL1", "EURL2") and config.endpoint == "functionUrl"
    assert config.sources["distribution_ids"] == f"{FLEET_FILE} NCW_DISTRIBUTION_IDS"
    assert config.queue_url is None and config.reconciler_function_name is None
    assert config.live and "read from NCW_FLEET_FILE" in config.pulumi_note


def test_the_variables_of_another_stack_are_not_used():
    env = {"NCW_STACK": "prod", "NCW_DISTRIBUTION_IDS": "EPROD1", "AWS_REGION": "eu-west-1"}
    config = _load("staging", env)
    assert config.distribution_ids == () and not config.live
    assert "describe stack prod" in config.pulumi_note


def test_committed_stack_file_alone_does_not_reach_out_to_aws():
    config = _load()
    assert config.distribution_ids == ("E2EXAMPLE1ABCD",)  # from Pulumi.dev.yaml
    assert not config.live
    here = where_am_i(config)
    assert here.account is None and "No stack to talk to" in (here.skipped or "")
    assert here.outcome().verdict == "SKIPPED"
    assert path_health(config, None).skipped
    assert history(config, None).skipped
    assert not trigger(config, send_test_notification=True).sent


def test_where_am_i_reports_account_and_masks_the_webhook(moto_aws):
    config = _load(
        webhook_url=f"https://lambda.example.com/webhooks/netlify?token={TOKEN}",
        distribution_id="EAAA1",
    )
    here = where_am_i(config)
    assert here.account == "123456789012"
    shown = here.value("webhook URL")
    assert TOKEN not in shown and "token=Tok3…" in shown
    assert TOKEN not in here.table().to_string()
    assert here.outcome().verdict == "PASS"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/p?token=abcdefghijkl", "https://h/p?token=abcd…"),
        ("https://h/p?dist=E1&token=abcdefghijkl", "https://h/p?dist=E1&token=abcd…"),
        ("https://h/p?token=short", "https://h/p?token=…"),
        ("https://h/p", "https://h/p"),
    ],
)
def test_mask_url(url, shown):
    assert mask_url(url) == shown
