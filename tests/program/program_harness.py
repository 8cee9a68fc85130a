"""Run ``__main__.py`` in-process under Pulumi mocks and record what it registered.

Each run happens inside a copy of the current ``contextvars`` context: Pulumi keeps its runtime
settings, root stack resource and config in context variables, so everything a run sets stays in
that copy and no global state leaks into other tests of the session.
"""

from __future__ import annotations

import contextvars
import runpy
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.settings import PROJECT, ConfigError
from infra.stack_files import PROJECT_DIR, StackFiles, load_stack_files

MAIN = PROJECT_DIR / "__main__.py"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
TEST_TOKEN = "Tk_test-0123456789abcdefGHIJ"  # 28 characters from the allowed set
TEST_JWS_SECRET = "jws-test-secret-QWERTY-9876"
TEST_API_TOKEN = "nfp_TestNetlifyApiToken0123456789abcdefXYZ"  # a personal access token's shape
DEFAULT_VPC_ID = "vpc-0default0000000001"
DEFAULT_SUBNETS = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
ZONE_ID = "Z0EXAMPLEZONE"
PARAMETER_VERSION = 3  # SSM counts every change of the value
ALB_ZONE_ID = "Z35SXDOTRQ7X7K"
SHARED_LISTENER_ARN = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
    "listener/app/shared-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
)
SHARED_LB_ARN = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
    "loadbalancer/app/shared-alb/50dc6c495c0c9188"
)
# The same ALB's port-80 listener: a wrong listenerArn the program must refuse.
SHARED_HTTP_LISTENER_ARN = SHARED_LISTENER_ARN.replace("f2f7dc8efc522ab2", "0b0e5a7c1d2e3f40")
SHARED_LB_DNS = "shared-alb-1234567890.us-east-1.elb.amazonaws.com"
# What Lambda assigns a function URL: a 32-character id under lambda-url.<region>.on.aws.
FUNCTION_URL_ID = "abcdefghijklmnopqrstuvwxyz012345"


INGEST_COMPONENT = "ncw:site:Function"
PIPELINE_COMPONENT = "ncw:site:Pipeline"
ALARMS_COMPONENT = "ncw:site:Alarms"
RECONCILER_COMPONENT = "ncw:site:Reconciler"
FUNCTION_URL_COMPONENT = "ncw:site:FunctionUrl"


def is_secret_wrapper(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap(value: Any) -> Any:
    """The value with every secret wrapper replaced by its content."""
    if is_secret_wrapper(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def plain_strings(value: Any) -> Iterator[str]:
    """Every string leaf that is NOT inside a secret wrapper (keys included)."""
    if is_secret_wrapper(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from plain_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from plain_strings(item)
    elif isinstance(value, str):
        yield value


@dataclass
class Registration:
    type: str
    name: str
    id: str
    inputs: dict  # as the mocks received them: secrets still wrapped
    custom: bool
    urn: str
    parent: str
    dependencies: list[str]
    outputs: dict  # the state the mocks answered (inputs plus computed values)

    @property
    def plain(self) -> dict:
        return unwrap(self.inputs)


@dataclass
class ProgramRun:
    resources: list[Registration] = field(default_factory=list)
    invokes: list[tuple[str, dict]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)  # resolved values
    secret_outputs: set[str] = field(default_factory=set)
    error: BaseException | None = None

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Registration:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def child(self, component_type: str, type_: str) -> Registration:
        """The one ``type_`` resource whose parent is the (single) ``component_type``
        component: e.g. the ingest's Lambda rather than the worker's."""
        parent = self.one(component_type).urn
        found = [r for r in self.of_type(type_) if r.parent == parent]
        assert len(found) == 1, f"expected one {type_} in {component_type}, got {found}"
        return found[0]

    def ingest(self, type_: str) -> Registration:
        return self.child(INGEST_COMPONENT, type_)

    def worker(self, type_: str) -> Registration:
        return self.child(PIPELINE_COMPONENT, type_)

    def reconciler(self, type_: str) -> Registration:
        return self.child(RECONCILER_COMPONENT, type_)


# The DNS suffix of each partition the tests run in (aws.get_partition()'s dnsSuffix).
DNS_SUFFIXES = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn"}


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers invokes like AWS would for the example account, and fills in computed outputs.

    ``partition`` and ``region`` are the provider's (``aws.get_partition()``,
    ``aws.get_region()``); computed ARNs and queue URLs use them too.
    """

    def __init__(self, run: ProgramRun, *, partition: str = "aws", region: str = REGION) -> None:
        self.run = run
        self.partition = partition
        self.region = region

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.run.invokes.append((args.token, dict(args.args)))
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{self.partition}:iam::{ACCOUNT_ID}:user/deployer",
                "userId": "AIDAEXAMPLE",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getPartition:getPartition":
            return {
                "id": self.partition,
                "partition": self.partition,
                "dnsSuffix": DNS_SUFFIXES[self.partition],
                "reverseDnsPrefix": ".".join(reversed(DNS_SUFFIXES[self.partition].split("."))),
            }
        if token == "aws:index/getRegion:getRegion":
            return {
                "id": self.region,
                "region": self.region,
                "name": self.region,
                "endpoint": f"ec2.{self.region}.{DNS_SUFFIXES[self.partition]}",
                "description": self.region,
            }
        if token == "aws:ec2/getVpc:getVpc":
            return {"id": DEFAULT_VPC_ID, "default": True, "cidrBlock": "172.31.0.0/16"}
        if token == "aws:ec2/getSubnets:getSubnets":
            return {"id": REGION, "ids": DEFAULT_SUBNETS, "filters": args.args.get("filters")}
        if token == "aws:route53/getZone:getZone":
            return {"id": ZONE_ID, "zoneId": ZONE_ID, "name": args.args["name"]}
        if token == "aws:lb/getListener:getListener":
            return {
                "id": args.args["arn"],
                "arn": args.args["arn"],
                "loadBalancerArn": SHARED_LB_ARN,
                **(
                    {"port": 80, "protocol": "HTTP"}
                    if args.args["arn"] == SHARED_HTTP_LISTENER_ARN
                    else {"port": 443, "protocol": "HTTPS"}
                ),
            }
        if token == "aws:lb/getLoadBalancer:getLoadBalancer":
            return {
                "id": args.args["arn"],
                "arn": args.args["arn"],
                "dnsName": SHARED_LB_DNS,
                "zoneId": ALB_ZONE_ID,
            }
        raise NotImplementedError(f"no mock for invoke {token}")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        _arn = self._arn
        inputs = dict(args.inputs)
        name = inputs.get("name") or f"{args.name}-mock"
        computed: dict[str, Any] = {}
        resource_id = f"{args.name}-id"
        match args.typ:
            case "aws:lambda/function:Function":
                computed = {"arn": _arn("lambda", f"function:{name}"), "name": name}
            case "aws:cloudwatch/logGroup:LogGroup":
                computed = {"arn": _arn("logs", f"log-group:{name}")}
            case "aws:ssm/parameter:Parameter":
                computed = {"arn": _arn("ssm", f"parameter{name}"), "version": PARAMETER_VERSION}
            case "aws:iam/role:Role":
                computed = {
                    "arn": f"arn:{self.partition}:iam::{ACCOUNT_ID}:role/{name}",
                    "name": name,
                }
                resource_id = name
            case "aws:lb/targetGroup:TargetGroup":
                computed = {
                    "arn": _arn("elasticloadbalancing", f"targetgroup/{name}/73e2d6bc24d8a067")
                }
            case "aws:lb/loadBalancer:LoadBalancer":
                computed = {
                    "arn": _arn(
                        "elasticloadbalancing", f"loadbalancer/app/{name}/50dc6c495c0c9188"
                    ),
                    "dnsName": f"{name}-1234567890.{REGION}.elb.amazonaws.com",
                    "zoneId": ALB_ZONE_ID,
                }
            case "aws:lb/listener:Listener":
                computed = {
                    "arn": _arn(
                        "elasticloadbalancing",
                        f"listener/app/{args.name}/50dc6c495c0c9188/f2f7dc8efc522ab2",
                    )
                }
            case "aws:acm/certificate:Certificate":
                domain = inputs["domainName"]
                computed = {
                    "arn": _arn("acm", "certificate/0d1e2f3a-example"),
                    "domainValidationOptions": [
                        {
                            "domainName": domain,
                            "resourceRecordName": f"_3b7c.{domain}.",
                            "resourceRecordType": "CNAME",
                            "resourceRecordValue": "_9f1e.acm-validations.aws.",
                        }
                    ],
                }
            case "aws:route53/record:Record":
                computed = {"fqdn": str(unwrap(inputs.get("name", ""))).rstrip(".")}
            case "aws:sqs/queue:Queue":
                suffix = DNS_SUFFIXES[self.partition]
                url = f"https://sqs.{self.region}.{suffix}/{ACCOUNT_ID}/{name}"
                computed = {"arn": _arn("sqs", name), "url": url}
                resource_id = url  # a queue's id is its URL
            case "aws:sns/topic:Topic":
                computed = {"arn": _arn("sns", name)}
                resource_id = computed["arn"]
            case "aws:sns/topicSubscription:TopicSubscription":
                computed = {"arn": f"{unwrap(inputs['topic'])}:0f1e2d3c-example"}
            case "aws:cloudwatch/metricAlarm:MetricAlarm":
                computed = {"arn": _arn("cloudwatch", f"alarm:{name}")}
            case "aws:lambda/functionUrl:FunctionUrl":
                computed = {
                    "functionUrl": f"https://{FUNCTION_URL_ID}.lambda-url.{self.region}.on.aws/",
                    "urlId": FUNCTION_URL_ID,
                    "functionArn": _arn("lambda", f"function:{unwrap(inputs['functionName'])}"),
                }
            case "aws:cloudwatch/eventRule:EventRule":
                computed = {"arn": _arn("events", f"rule/{name}")}
                resource_id = name
            case "aws:lambda/eventSourceMapping:EventSourceMapping":
                resource_id = "a1b2c3d4-esm-example"
                computed = {"uuid": resource_id, "functionArn": inputs.get("functionName")}
            case "aws:ec2/securityGroup:SecurityGroup":
                resource_id = "sg-0123456789abcdef0"
                computed = {"arn": _arn("ec2", f"security-group/{resource_id}")}
        return resource_id, {**inputs, **computed}


class RecordingMonitor(MockMonitor):
    """MockMonitor that also keeps each registration's parent and explicit dependencies."""

    def __init__(self, mocks: RecordingMocks, run: ProgramRun) -> None:
        super().__init__(mocks)
        self.run = run
        self._lock = threading.Lock()

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registration = Registration(
                type=request.type,
                name=request.name,
                id=response.id,
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                custom=bool(request.custom),
                urn=response.urn,
                parent=request.parent,
                dependencies=list(request.dependencies),
                outputs=rpc.deserialize_properties(response.object, keep_unknowns=True),
            )
            with self._lock:
                self.run.resources.append(registration)
        return response


def dev_config(stack: str = "dev") -> tuple[dict[str, str], dict[str, str]]:
    """A committed example stack (default: dev), as the CLI applies it: (project values,
    provider values)."""
    files = load_stack_files(stack)
    return dict(files.values), dict(files.provider)


def run_committed_stack(
    stack: str,
    overrides: Mapping[str, str | None] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
) -> ProgramRun:
    """Run the program on the committed ``Pulumi.<stack>.yaml`` as stack ``stack``."""
    return run_program(overrides, secrets=secrets, stack=stack, stack_files=load_stack_files(stack))


def run_program(
    overrides: Mapping[str, str | None] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
    stack: str = "dev",
    stack_files: StackFiles | None = None,
    partition: str = "aws",
) -> ProgramRun:
    """Run ``__main__.py`` on a stack's config (default: the committed dev stack) with
    ``overrides`` (None removes a key) and the given secrets (default: a test token and JWS
    secret), as stack ``stack``, with the provider in ``partition``."""
    if stack_files is None:
        values, provider = dev_config()
    else:
        values, provider = dict(stack_files.values), dict(stack_files.provider)
    for key, value in (overrides or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    if secrets is None:
        secrets = {"webhookToken": TEST_TOKEN, "netlifyJwsSecret": TEST_JWS_SECRET}
    values.update(secrets)
    return contextvars.copy_context().run(_run, values, provider, set(secrets), stack, partition)


def _run(values: dict, provider: dict, secret_keys: set, stack: str, partition: str) -> ProgramRun:
    run = ProgramRun()
    mocks = RecordingMocks(run, partition=partition, region=provider.get("aws:region", REGION))
    settings.ROOT.set(None)  # a fresh root stack resource for this run
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks, run)
    )
    config = {f"{PROJECT}:{key}": value for key, value in values.items()}
    config.update(provider)
    pulumi.runtime.set_all_config(config, secret_keys=[f"{PROJECT}:{k}" for k in secret_keys])
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(MAIN), run_name="__main__")))
    except Exception as error:  # reported to the test
        run.error = error
        return run
    root = settings.get_root_resource()
    assert root is not None, "the program ran without a root stack resource"
    for name, value in root.outputs.items():
        output = pulumi.Output.from_input(value)
        run.outputs[name] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            run.secret_outputs.add(name)
    return run


def config_error(run: ProgramRun) -> ConfigError:
    """The ConfigError a run ended with: a RunError (clean CLI exit, message alone) caused by it."""
    assert isinstance(run.error, pulumi.RunError), run.error
    cause = run.error.__cause__
    assert isinstance(cause, ConfigError), cause
    assert str(run.error) == str(cause)
    return cause
