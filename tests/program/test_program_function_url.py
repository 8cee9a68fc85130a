"""``endpoint: functionUrl``: a Lambda function URL in front of the ingest and no load balancer;
the refused ALB keys; names, tags and outputs without a domain."""

from __future__ import annotations

import json

import pytest
import yaml

from function import webhook_settings
from infra import endpoint, naming
from infra.netlify_hook import EVENTS
from infra.settings import (
    DEFAULT_RULE_PRIORITY,
    ENDPOINT_ALB,
    ENDPOINT_FUNCTION_URL,
    ConfigError,
    parse_site_config,
)
from infra.stack_files import PROJECT_DIR, load_stack_files
from tests.program.program_harness import (
    FUNCTION_URL_ID,
    REGION,
    SHARED_LISTENER_ARN,
    TEST_JWS_SECRET,
    TEST_TOKEN,
    config_error,
    dev_config,
    plain_strings,
    run_committed_stack,
)
from tests.program.test_program_secrets_and_outputs import OUTPUT_NAMES

FUNCTION = "aws:lambda/function:Function"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
PERMISSION = "aws:lambda/permission:Permission"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# Everything only the ALB endpoint has.
ALB_TYPES = {
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/listener:Listener",
    "aws:lb/listenerRule:ListenerRule",
    "aws:lb/listenerCertificate:ListenerCertificate",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/targetGroupAttachment:TargetGroupAttachment",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:acm/certificate:Certificate",
    "aws:acm/certificateValidation:CertificateValidation",
    "aws:route53/record:Record",
}
ALB_LOOKUPS = {
    "aws:route53/getZone:getZone",
    "aws:ec2/getVpc:getVpc",
    "aws:ec2/getSubnets:getSubnets",
    "aws:lb/getListener:getListener",
    "aws:lb/getLoadBalancer:getLoadBalancer",
}
URL_COMPONENT_TYPES = {
    "ncw:site:Webhook",
    "ncw:site:Function",
    "ncw:site:FunctionUrl",
    "ncw:site:Pipeline",
    "ncw:site:Alarms",
}
STACK = "dev-url"
MOCK_FUNCTION_URL = f"https://{FUNCTION_URL_ID}.lambda-url.{REGION}.on.aws/"


def _url_values(**overrides: str | None) -> dict[str, str]:
    values, _ = dev_config(STACK)
    values["webhookToken"] = TEST_TOKEN
    for key, value in overrides.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def _permission(run, action: str) -> dict:
    found = [r.plain for r in run.of_type(PERMISSION) if r.plain["action"] == action]
    assert len(found) == 1, found
    return found[0]


# -- the function URL and its two resource-policy statements -----------------------------------


def test_function_url_fronts_the_ingest_without_iam_auth(url_run):
    url = url_run.one(FUNCTION_URL).plain
    assert url["functionName"] == url_run.ingest(FUNCTION).plain["name"]
    assert url["authorizationType"] == "NONE"
    assert url["invokeMode"] == "BUFFERED"
    assert "cors" not in url  # Netlify calls server to server
    assert "qualifier" not in url  # the function itself, as the permissions grant it


def test_invoke_function_url_is_granted_to_everyone_for_auth_type_none_only(url_run):
    assert _permission(url_run, "lambda:InvokeFunctionUrl") == {
        "action": "lambda:InvokeFunctionUrl",
        "function": url_run.outputs["function_name"],
        "principal": "*",
        "functionUrlAuthType": "NONE",
    }


def test_invoke_function_is_granted_to_everyone_only_through_the_function_url(url_run):
    # Without invokedViaFunctionUrl the grant to "*" would open the Invoke API itself.
    assert _permission(url_run, "lambda:InvokeFunction") == {
        "action": "lambda:InvokeFunction",
        "function": url_run.outputs["function_name"],
        "principal": "*",
        "invokedViaFunctionUrl": True,
    }


def test_function_url_is_created_after_both_permissions(url_run):
    url = url_run.one(FUNCTION_URL)
    permissions = {r.urn for r in url_run.of_type(PERMISSION)}
    assert len(permissions) == 2
    assert permissions <= set(url.dependencies)


def test_no_load_balancer_listener_rule_certificate_or_dns_with_a_function_url(url_run):
    assert {r.type for r in url_run.resources} & ALB_TYPES == set()
    assert {token for token, _ in url_run.invokes} & ALB_LOOKUPS == set()


def test_alb_modes_have_no_function_url_and_no_public_permission(own_alb_run, shared_run):
    for run in (own_alb_run, shared_run):
        assert run.of_type(FUNCTION_URL) == []
        assert [p.plain["principal"] for p in run.of_type(PERMISSION)] == [
            "elasticloadbalancing.amazonaws.com"
        ]


def test_every_resource_is_a_child_of_a_site_component(url_run):
    components = {r.urn: r.type for r in url_run.resources if not r.custom}
    assert set(components.values()) == URL_COMPONENT_TYPES
    for resource in url_run.resources:
        if resource.custom:
            assert components.get(resource.parent) in URL_COMPONENT_TYPES - {"ncw:site:Webhook"}


# -- the ingest, the pipeline and the alarms stay ----------------------------------------------


def test_ingest_reads_the_webhook_path_from_its_environment_in_both_modes(url_run, own_alb_run):
    for run in (url_run, own_alb_run):
        variables = run.ingest(FUNCTION).plain["environment"]["variables"]
        assert variables[webhook_settings.ENV_WEBHOOK_PATH] == "/webhooks/netlify"
        assert webhook_settings.load_settings(variables).webhook_path == "/webhooks/netlify"


def test_queue_worker_and_alarms_are_the_same_as_behind_an_alb(url_run, own_alb_run):
    endpoint_types = ALB_TYPES | {FUNCTION_URL, PERMISSION}

    def shape(run) -> dict[str, int]:
        # Custom resources only: the endpoint's components differ by design.
        kept = [r.type for r in run.resources if r.custom and r.type not in endpoint_types]
        return {t: kept.count(t) for t in set(kept)}

    assert shape(url_run) == shape(own_alb_run)
    suffixes = {r.plain["name"].removeprefix("ncw-dev-url-") for r in url_run.of_type(ALARM)}
    assert suffixes == {
        "dead-letters",
        "queue-stuck",
        "ingest-5xx",
        "ingest-errors",
        "worker-errors",
    }


def test_ingest_policy_is_unchanged_by_the_endpoint(url_run, own_alb_run):
    def sids(run) -> list[str]:
        policy = json.loads(run.ingest("aws:iam/rolePolicy:RolePolicy").plain["policy"])
        return [statement["Sid"] for statement in policy["Statement"]]

    assert (
        sids(url_run)
        == sids(own_alb_run)
        == [
            "WriteOwnLogs",
            "ReadWebhookSecrets",
            "QueueInvalidations",
        ]
    )


# -- names and tags without a domain -----------------------------------------------------------


def test_names_are_the_stacks_alone_without_a_domain(url_run):
    outputs = url_run.outputs
    assert outputs["function_name"] == "ncw-dev-url"
    assert outputs["worker_function_name"] == "ncw-dev-url-worker"
    assert outputs["secrets_parameter_name"] == "/netlify-cloudfront-webhook/dev-url/secrets"
    assert outputs["queue_url"].endswith("/ncw-dev-url-invalidations")
    assert outputs["dead_letter_queue_url"].endswith("/ncw-dev-url-dead-letters")
    assert outputs["alarm_topic_arn"].endswith(":ncw-dev-url-alarms")


@pytest.mark.parametrize(
    "name",
    [
        naming.function_name("s", ""),
        naming.worker_function_name("s", ""),
        naming.reconciler_function_name("s", ""),
        naming.reconciler_schedule_name("s", ""),
        naming.queue_name("s", ""),
        naming.dead_letter_queue_name("s", ""),
        naming.alarm_topic_name("s", ""),
        naming.alarm_name("s", "", "dead-letters"),
    ],
)
def test_names_without_a_domain_have_no_empty_part(name):
    assert name.startswith("ncw-s")
    assert "--" not in name and not name.endswith("-")


def test_names_without_a_domain_differ_from_the_same_stacks_names_with_one():
    assert naming.secrets_parameter_name("s", "") == "/netlify-cloudfront-webhook/s/secrets"
    assert "//" not in naming.secrets_parameter_name("s", "")
    assert naming.secrets_parameter_name("s", "a.example.com") != naming.secrets_parameter_name(
        "s", ""
    )
    assert naming.function_name("s", "a.example.com") != naming.function_name("s", "")


def test_every_tagged_resource_names_the_stack_as_its_site(url_run):
    tags = {r.name: r.plain["tags"] for r in url_run.resources if r.plain.get("tags")}
    assert len(tags) >= 8
    expected = {"project": "netlify-cloudfront-webhook", "stack": STACK, "site": STACK}
    assert {name for name, value in tags.items() if value != expected} == set()


def test_descriptions_name_the_stack_without_a_domain(url_run):
    descriptions = [r.plain["description"] for r in url_run.resources if "description" in r.plain]
    assert len(descriptions) >= 5
    broken = [d for d in descriptions if d.endswith((" ", "for")) or "()" in d]
    assert broken == []
    assert all("stack dev-url" in d for d in descriptions)


# -- outputs -----------------------------------------------------------------------------------


def test_outputs_have_no_listener_and_say_function_url(url_run):
    assert set(url_run.outputs) == OUTPUT_NAMES - {"listener_arn", "load_balancer_dns_name"}
    assert url_run.outputs["endpoint"] == ENDPOINT_FUNCTION_URL
    assert url_run.secret_outputs == {"webhook_url", "netlify_hooks"}


def test_webhook_url_is_the_function_url_plus_the_path_and_token(url_run):
    function_url = url_run.one(FUNCTION_URL).outputs["functionUrl"]
    assert function_url == MOCK_FUNCTION_URL  # with a trailing slash, as Lambda reports it
    assert url_run.outputs["webhook_url"] == (
        f"{MOCK_FUNCTION_URL.rstrip('/')}/webhooks/netlify?token={TEST_TOKEN}"
    )


def test_netlify_hooks_are_a_secret_list_for_both_events(url_run):
    assert "netlify_hooks" in url_run.secret_outputs
    assert url_run.outputs["netlify_hooks"] == [
        {
            "type": "url",
            "event": event,
            "data": {"url": url_run.outputs["webhook_url"], "signature_secret": TEST_JWS_SECRET},
        }
        for event in EVENTS
    ]


def test_secrets_reach_only_the_parameter_and_stay_wrapped(url_run):
    def holds(value) -> bool:
        return any(TEST_TOKEN in s or TEST_JWS_SECRET in s for s in value)

    assert [r.name for r in url_run.resources if holds(plain_strings(r.inputs))] == []
    assert {r.type for r in url_run.resources if holds(plain_strings(r.plain))} == {
        "aws:ssm/parameter:Parameter"
    }
    public = {k: v for k, v in url_run.outputs.items() if k not in url_run.secret_outputs}
    assert not holds(plain_strings(public))


# -- config: the committed stack, the schema, refused keys -------------------------------------


def test_committed_dev_url_stack_uses_a_function_url_and_no_alb_key():
    files = load_stack_files(STACK)
    assert files.values["endpoint"] == ENDPOINT_FUNCTION_URL
    dev = load_stack_files("dev")
    for key in ("distributionIds", "netlifySiteId", "webhookPath", "invalidationPaths"):
        assert files.values[key] == dev.values[key]
    settings = parse_site_config(_url_values())
    assert settings.uses_function_url
    assert (settings.domain, settings.hosted_zone) == ("", "")
    assert (settings.listener_arn, settings.vpc_id, settings.subnet_ids) == (None, None, ())
    assert not settings.shared_listener


def test_committed_dev_url_stack_file_documents_how_to_set_its_secrets():
    text = (PROJECT_DIR / "Pulumi.dev-url.yaml").read_text()
    for key in ("webhookToken", "netlifyJwsSecret", "netlifyApiToken"):
        assert f"pulumi config set --secret {key}" in text
    assert "secure:" not in text  # no encrypted value the tests could not read


def test_schema_defaults_endpoint_to_alb_and_domain_to_empty():
    config = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
    assert config["endpoint"]["default"] == ENDPOINT_ALB
    assert config["domain"]["default"] == ""
    assert config["rulePriority"]["default"] == DEFAULT_RULE_PRIORITY
    assert all(config[key].get("description") for key in config)


ALB_KEY_VALUES = [
    ("domain", "lambda.example.com"),
    ("hostedZone", "example.com"),
    ("listenerArn", SHARED_LISTENER_ARN),
    ("rulePriority", "200"),
    ("vpcId", "vpc-0123456789abcdef0"),
    ("subnetIds", '["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]'),
]


@pytest.mark.parametrize(("key", "value"), ALB_KEY_VALUES, ids=[k for k, _ in ALB_KEY_VALUES])
def test_alb_key_set_with_a_function_url_is_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_url_values(**{key: value}))
    assert caught.value.key == key
    problem, _, allowed = str(caught.value).partition("; allowed: ")
    assert problem == (
        f"netlify-cloudfront-webhook:{key}: set with endpoint functionUrl: only an ALB uses it"
    )
    assert "endpoint: alb" in allowed


def test_default_rule_priority_is_fine_with_a_function_url():
    assert parse_site_config(_url_values(rulePriority="100")).rule_priority == 100
    assert parse_site_config(_url_values(rulePriority=None)).rule_priority == 100


def test_refused_alb_key_stops_the_program_before_any_resource_or_lookup():
    run = run_committed_stack(STACK, {"domain": "lambda.example.com"})
    assert config_error(run).key == "domain"
    assert (run.resources, run.invokes) == ([], [])


def test_unknown_endpoint_is_refused():
    with pytest.raises(ConfigError) as caught:
        parse_site_config(_url_values(endpoint="apiGateway"))
    assert caught.value.key == "endpoint"
    assert str(caught.value).endswith("allowed: alb, functionUrl")


def test_alb_endpoint_without_a_domain_is_refused_pointing_at_function_url():
    values, _ = dev_config()
    values.update({"webhookToken": TEST_TOKEN, "domain": ""})
    with pytest.raises(ConfigError) as caught:
        parse_site_config(values)
    assert caught.value.key == "domain"
    assert "set endpoint to functionUrl" in str(caught.value)


@pytest.mark.parametrize(
    "base", ["https://abc.lambda-url.eu-west-1.on.aws/", "https://abc.example"]
)
def test_webhook_url_joins_base_and_path_with_one_slash(base):
    assert endpoint.webhook_endpoint(base, "/hooks/n") == base.rstrip("/") + "/hooks/n"
    assert endpoint.webhook_url(base, "/hooks/n", "Tok") == base.rstrip("/") + "/hooks/n?token=Tok"
    assert endpoint.webhook_url(endpoint.alb_base_url("a.example.com"), "/p", "T") == (
        "https://a.example.com/p?token=T"
    )
