"""Stack config -> validated, typed site settings.

Pure Python: the Pulumi program, the tests and the local stack all build ``SiteSettings`` through
``parse_site_config`` from a plain mapping of config key -> value (values as the Pulumi CLI hands
them to the program: strings, or JSON text for arrays and integers). Defaults live in
``Pulumi.yaml``'s config schema, the one place the CLI reads them from; ``stack_files`` applies
them the same way for tests and the local stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from function import webhook_settings

PROJECT = "netlify-cloudfront-webhook"

# Config keys, as spelled in Pulumi.yaml and Pulumi.<stack>.yaml.
DOMAIN = "domain"
HOSTED_ZONE = "hostedZone"
DISTRIBUTION_IDS = "distributionIds"
INVALIDATION_PATHS = "invalidationPaths"
DEPLOY_CONTEXTS = "deployContexts"
NETLIFY_SITE_ID = "netlifySiteId"
WEBHOOK_PATH = "webhookPath"
WEBHOOK_TOKEN = "webhookToken"  # noqa: S105 (config key names)
NETLIFY_JWS_SECRET = "netlifyJwsSecret"  # noqa: S105
LISTENER_ARN = "listenerArn"
RULE_PRIORITY = "rulePriority"
VPC_ID = "vpcId"
SUBNET_IDS = "subnetIds"
LOG_RETENTION_DAYS = "logRetentionDays"
ALARM_TOPIC_ARN = "alarmTopicArn"
ALARM_EMAIL = "alarmEmail"
ENDPOINT = "endpoint"
NETLIFY_API_TOKEN = "netlifyApiToken"  # noqa: S105
RECONCILE_MINUTES = "reconcileMinutes"

SECRET_KEYS = (WEBHOOK_TOKEN, NETLIFY_JWS_SECRET, NETLIFY_API_TOKEN)
ALL_KEYS = (
    ENDPOINT,
    DOMAIN,
    HOSTED_ZONE,
    DISTRIBUTION_IDS,
    INVALIDATION_PATHS,
    DEPLOY_CONTEXTS,
    NETLIFY_SITE_ID,
    WEBHOOK_PATH,
    WEBHOOK_TOKEN,
    NETLIFY_JWS_SECRET,
    LISTENER_ARN,
    RULE_PRIORITY,
    VPC_ID,
    SUBNET_IDS,
    LOG_RETENTION_DAYS,
    ALARM_TOPIC_ARN,
    ALARM_EMAIL,
    NETLIFY_API_TOKEN,
    RECONCILE_MINUTES,
)

# Where Netlify's notification arrives: an ALB (the site's own or a shared one) or a Lambda
# function URL (no load balancer, no fixed cost).
ENDPOINT_ALB = "alb"
ENDPOINT_FUNCTION_URL = "functionUrl"
ENDPOINT_MODES = (ENDPOINT_ALB, ENDPOINT_FUNCTION_URL)
# Keys only an ALB uses: refused with a function URL rather than silently ignored. rulePriority
# has a schema default, so only a value other than that default counts as set.
ALB_ONLY_KEYS = (DOMAIN, HOSTED_ZONE, LISTENER_ARN, RULE_PRIORITY, VPC_ID, SUBNET_IDS)
DEFAULT_RULE_PRIORITY = 100

# ACM: a certificate's first domain name (its Common Name) is at most 64 characters.
DOMAIN_MAX = 64
# CloudFront: at most 15 wildcard paths in progress per distribution, so an invalidation with
# more can never succeed.
MAX_WILDCARD_PATHS = 15
# The reconciler's schedule, in minutes (issue 11).
DEFAULT_RECONCILE_MINUTES = 10
RECONCILE_MINUTES_RANGE = (5, 60)

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_CHOICES = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})+")
# ALB host-header values: only letters after the last dot.
_TOP_LEVEL_LABEL = re.compile(r"[a-z]+")
_DISTRIBUTION_ID = re.compile(r"[A-Z0-9]+")
_LISTENER_ARN = re.compile(
    r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/app/[^/]+/[0-9a-f]+/[0-9a-f]+"
)
_VPC_ID = re.compile(r"vpc-[0-9a-f]{8,17}")
_SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8,17}")
_SITE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# arn:<partition>:sns:<region>:<account>:<topic name: 1-256 of A-Z a-z 0-9 - _>.
_SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
# An address is at most 254 characters (RFC 5321's path limit); the recipient confirms the
# subscription by mail, so a plain shape check (one @, no blanks, a dotted domain) is enough.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_EMAIL_MAX = 254


class ConfigError(ValueError):
    """A bad stack config value; the message names the key, the problem and what is allowed."""

    def __init__(self, key: str, problem: str, allowed: str) -> None:
        super().__init__(f"{PROJECT}:{key}: {problem}; allowed: {allowed}")
        self.key = key


class Secret:
    """A secret string that never shows itself in repr, str or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SiteSettings:
    domain: str
    hosted_zone: str
    distribution_ids: tuple[str, ...]
    invalidation_paths: tuple[str, ...]
    deploy_contexts: tuple[str, ...]
    webhook_path: str
    webhook_token: Secret
    rule_priority: int
    log_retention_days: int
    netlify_site_id: str | None = None
    netlify_jws_secret: Secret | None = None
    listener_arn: str | None = None
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    # An existing SNS topic for the alarms (shared by a fleet of sites); None = the stack's own.
    alarm_topic_arn: str | None = None
    # An address subscribed to the stack's own alarm topic.
    alarm_email: str | None = None
    # ENDPOINT_ALB or ENDPOINT_FUNCTION_URL. With a function URL, domain and hosted_zone are ""
    # and listener_arn, vpc_id, subnet_ids are unset.
    endpoint: str = ENDPOINT_ALB
    # A Netlify personal access token for the reconciler; None = no reconciler.
    netlify_api_token: Secret | None = None
    reconcile_minutes: int = DEFAULT_RECONCILE_MINUTES

    @property
    def shared_listener(self) -> bool:
        return self.listener_arn is not None

    @property
    def uses_function_url(self) -> bool:
        return self.endpoint == ENDPOINT_FUNCTION_URL

    @property
    def reconciler_enabled(self) -> bool:
        """The reconciler runs when the site has a Netlify API token (then a site id, too)."""
        return self.netlify_api_token is not None


def default_hosted_zone(domain: str) -> str:
    """``domain`` without its first label, or the domain itself when it has only two labels."""
    labels = domain.split(".")
    return domain if len(labels) <= 2 else ".".join(labels[1:])


def parse_site_config(raw: Mapping[str, object]) -> SiteSettings:
    """Validate a stack's config (defaults already applied) into ``SiteSettings``.

    Raises ConfigError for the first bad value, naming the key. Secret values never appear in a
    message.
    """
    reader = _Reader(raw)
    endpoint = reader.optional_text(ENDPOINT) or ENDPOINT_ALB
    if endpoint not in ENDPOINT_MODES:
        raise ConfigError(ENDPOINT, f"unknown endpoint {endpoint!r}", ", ".join(ENDPOINT_MODES))
    if endpoint == ENDPOINT_FUNCTION_URL:
        _refuse_alb_keys(reader)
        domain, hosted_zone = "", ""
    else:
        domain, hosted_zone = _domain_and_zone(reader)

    distribution_ids = reader.text_list(DISTRIBUTION_IDS)
    if not distribution_ids:
        raise ConfigError(DISTRIBUTION_IDS, "the list is empty", "one or more distribution ids")
    for dist_id in distribution_ids:
        if not _DISTRIBUTION_ID.fullmatch(dist_id):
            raise ConfigError(
                DISTRIBUTION_IDS, f"{dist_id!r} is not a distribution id", "A-Z and 0-9 only"
            )

    paths = _invalidation_paths(reader)

    contexts = reader.text_list(DEPLOY_CONTEXTS)
    allowed_contexts = ", ".join(webhook_settings.KNOWN_DEPLOY_CONTEXTS)
    if not contexts:
        raise ConfigError(DEPLOY_CONTEXTS, "the list is empty", allowed_contexts)
    for context in contexts:
        if context not in webhook_settings.KNOWN_DEPLOY_CONTEXTS:
            raise ConfigError(DEPLOY_CONTEXTS, f"unknown context {context!r}", allowed_contexts)

    site_id = reader.optional_text(NETLIFY_SITE_ID)
    if site_id and not _SITE_ID.fullmatch(site_id):
        raise ConfigError(
            NETLIFY_SITE_ID, f"{site_id!r} is not a Netlify site id", "the site's API ID (a UUID)"
        )

    webhook_path = reader.required_text(WEBHOOK_PATH)
    try:
        # The ingest reads the path from WEBHOOK_PATH (decisive behind a function URL), so it
        # must pass the function's own rule; that rule has no ALB wildcard ('*', '?') either.
        webhook_settings.load_webhook_path({webhook_settings.ENV_WEBHOOK_PATH: webhook_path})
    except webhook_settings.SettingsError:
        raise ConfigError(
            WEBHOOK_PATH,
            f"{webhook_path!r} is not a plain URL path",
            "'/' then up to 127 of A-Z a-z 0-9 . _ ~ / - (no wildcards, no query)",
        ) from None

    token = reader.required_text(WEBHOOK_TOKEN)
    if not webhook_settings.TOKEN_PATTERN.fullmatch(token):
        raise ConfigError(
            WEBHOOK_TOKEN,
            f"the secret ({len(token)} characters) does not fit; '*' and '?' would be "
            "wildcards in the ALB rule",
            webhook_settings.TOKEN_RULE,
        )

    jws_secret = reader.optional_text(NETLIFY_JWS_SECRET)
    api_token, reconcile_minutes = _reconciler(reader, site_id)

    listener_arn = reader.optional_text(LISTENER_ARN)
    if listener_arn and not _LISTENER_ARN.fullmatch(listener_arn):
        raise ConfigError(
            LISTENER_ARN,
            f"{listener_arn!r} is not an ALB listener ARN",
            "arn:aws:elasticloadbalancing:<region>:<account>:listener/app/<name>/<id>/<id>",
        )

    priority = reader.integer(RULE_PRIORITY, default=DEFAULT_RULE_PRIORITY)
    if not 1 <= priority <= 50000:
        raise ConfigError(RULE_PRIORITY, f"{priority} is out of range", "1-50000")

    vpc_id = reader.optional_text(VPC_ID)
    if vpc_id and not _VPC_ID.fullmatch(vpc_id):
        raise ConfigError(VPC_ID, f"{vpc_id!r} is not a VPC id", "vpc-<hex>, or empty")
    subnet_ids = reader.text_list(SUBNET_IDS)
    for subnet_id in subnet_ids:
        if not _SUBNET_ID.fullmatch(subnet_id):
            raise ConfigError(SUBNET_IDS, f"{subnet_id!r} is not a subnet id", "subnet-<hex>")
    if subnet_ids and not vpc_id:
        raise ConfigError(SUBNET_IDS, "subnets given without vpcId", "set vpcId with subnetIds")
    if vpc_id and not listener_arn and len(subnet_ids) < 2:
        # A VPC's own subnets cannot be guessed: it usually has a public and a private subnet
        # per zone, and an ALB takes one subnet per zone, public for an internet-facing one.
        raise ConfigError(
            SUBNET_IDS,
            "an ALB needs public subnets in at least two Availability Zones",
            "2 or more ids, one per zone, with vpcId",
        )

    retention = reader.integer(LOG_RETENTION_DAYS)
    if retention not in LOG_RETENTION_CHOICES:
        raise ConfigError(
            LOG_RETENTION_DAYS,
            f"{retention} is not a CloudWatch Logs retention period",
            ", ".join(str(days) for days in LOG_RETENTION_CHOICES),
        )

    alarm_topic_arn, alarm_email = _alarm_target(reader)

    return SiteSettings(
        domain=domain,
        hosted_zone=hosted_zone,
        distribution_ids=tuple(dict.fromkeys(distribution_ids)),
        invalidation_paths=tuple(paths),
        deploy_contexts=tuple(dict.fromkeys(contexts)),
        webhook_path=webhook_path,
        webhook_token=Secret(token),
        rule_priority=priority,
        log_retention_days=retention,
        netlify_site_id=site_id,
        netlify_jws_secret=Secret(jws_secret) if jws_secret else None,
        listener_arn=listener_arn,
        vpc_id=vpc_id,
        subnet_ids=tuple(subnet_ids),
        alarm_topic_arn=alarm_topic_arn,
        alarm_email=alarm_email,
        endpoint=endpoint,
        netlify_api_token=Secret(api_token) if api_token else None,
        reconcile_minutes=reconcile_minutes,
    )


def _refuse_alb_keys(reader: _Reader) -> None:
    """With a function URL, a key only an ALB uses is a mistake: say so instead of ignoring it."""
    for key in ALB_ONLY_KEYS:
        if key == RULE_PRIORITY:
            is_set = reader.integer(key, default=DEFAULT_RULE_PRIORITY) != DEFAULT_RULE_PRIORITY
        elif key == SUBNET_IDS:
            is_set = bool(reader.text_list(key))
        else:
            is_set = reader.optional_text(key) is not None
        if is_set:
            allowed = "unset (or the default 100)" if key == RULE_PRIORITY else "unset (empty)"
            raise ConfigError(
                key,
                f"set with {ENDPOINT} {ENDPOINT_FUNCTION_URL}: only an ALB uses it",
                f"{allowed} with {ENDPOINT}: {ENDPOINT_FUNCTION_URL}, or {ENDPOINT}: "
                f"{ENDPOINT_ALB}",
            )


def _domain_and_zone(reader: _Reader) -> tuple[str, str]:
    """``domain`` and ``hostedZone`` of an ALB endpoint, as ACM, the ALB and Route53 take them."""
    value = reader.optional_text(DOMAIN)
    if value is None:
        raise ConfigError(
            DOMAIN,
            f"missing or empty; the ALB endpoint ({ENDPOINT}: {ENDPOINT_ALB}, the default) needs "
            "its host name",
            f"set it with `pulumi config set {DOMAIN}`, or set {ENDPOINT} to "
            f"{ENDPOINT_FUNCTION_URL} (no domain)",
        )
    domain = value.lower().rstrip(".")
    if not _HOST_NAME.fullmatch(domain):
        raise ConfigError(DOMAIN, f"{domain!r} is not a host name", "e.g. lambda.mysite.com")
    if len(domain) > DOMAIN_MAX:
        raise ConfigError(
            DOMAIN,
            f"{len(domain)} characters is longer than ACM allows for a certificate's first name",
            f"at most {DOMAIN_MAX} characters",
        )
    if not _TOP_LEVEL_LABEL.fullmatch(domain.rsplit(".", 1)[-1]):
        raise ConfigError(
            DOMAIN,
            f"{domain!r} ends in a label that is not letters only, which an ALB host-header "
            "condition refuses",
            "letters only after the last '.', e.g. lambda.mysite.com",
        )

    hosted_zone = reader.optional_text(HOSTED_ZONE)
    hosted_zone = hosted_zone.lower().rstrip(".") if hosted_zone else default_hosted_zone(domain)
    if domain != hosted_zone and not domain.endswith("." + hosted_zone):
        raise ConfigError(
            HOSTED_ZONE,
            f"{hosted_zone!r} does not contain {domain!r}",
            "the Route53 zone the domain belongs to",
        )
    return domain, hosted_zone


def _invalidation_paths(reader: _Reader) -> list[str]:
    """``invalidationPaths`` as CloudFront takes them and the environments carry them."""
    paths = reader.text_list(INVALIDATION_PATHS)
    allowed = (
        f"1-{webhook_settings.MAX_INVALIDATION_PATHS} paths starting with '/', '*' only at the "
        f"end, no ',', at most {MAX_WILDCARD_PATHS} with a '*'"
    )
    try:
        webhook_settings.validate_invalidation_paths(paths)
    except ValueError as error:
        raise ConfigError(INVALIDATION_PATHS, str(error), allowed) from None
    wildcards = sum("*" in path for path in paths)
    if wildcards > MAX_WILDCARD_PATHS:
        raise ConfigError(
            INVALIDATION_PATHS,
            f"{wildcards} paths hold a '*'; CloudFront refuses more than {MAX_WILDCARD_PATHS} "
            "wildcard paths in progress per distribution",
            allowed,
        )
    return paths


def _reconciler(reader: _Reader, site_id: str | None) -> tuple[str | None, int]:
    """``netlifyApiToken`` (the reconciler's switch) and ``reconcileMinutes``."""
    token = reader.optional_text(NETLIFY_API_TOKEN)
    minutes = reader.integer(RECONCILE_MINUTES, default=DEFAULT_RECONCILE_MINUTES)
    low, high = RECONCILE_MINUTES_RANGE
    if not low <= minutes <= high:
        raise ConfigError(RECONCILE_MINUTES, f"{minutes} is out of range", f"{low}-{high}")
    if token and not site_id:
        # The reconciler reads the site's published deploy and hooks by its id.
        raise ConfigError(
            NETLIFY_SITE_ID,
            f"missing: {NETLIFY_API_TOKEN} is set, and the reconciler needs the site to check",
            f"the site's API ID with {NETLIFY_API_TOKEN}, or {NETLIFY_API_TOKEN} unset",
        )
    return token, minutes


def _alarm_target(reader: _Reader) -> tuple[str | None, str | None]:
    """``alarmTopicArn`` and ``alarmEmail``, validated, and never both."""
    topic_arn = reader.optional_text(ALARM_TOPIC_ARN)
    if topic_arn and topic_arn.endswith(".fifo"):
        raise ConfigError(
            ALARM_TOPIC_ARN,
            f"{topic_arn!r} is a FIFO topic: publishing to it needs a message group id, which "
            "alarm notifications do not carry",
            "a standard topic's ARN, or empty for the stack's own topic",
        )
    if topic_arn and not _SNS_TOPIC_ARN.fullmatch(topic_arn):
        raise ConfigError(
            ALARM_TOPIC_ARN,
            f"{topic_arn!r} is not an SNS topic ARN",
            "arn:<partition>:sns:<region>:<12-digit account>:<topic name>, or empty",
        )
    email = reader.optional_text(ALARM_EMAIL)
    if email and (len(email) > _EMAIL_MAX or not _EMAIL.fullmatch(email)):
        raise ConfigError(
            ALARM_EMAIL,
            f"{email!r} is not an email address",
            f"name@domain.tld, one @, no blanks, at most {_EMAIL_MAX} characters",
        )
    if email and topic_arn:
        # The stack subscribes the address to the topic it owns; a shared topic's subscriptions
        # belong to whoever manages that topic (a destroy here must not unsubscribe a fleet).
        raise ConfigError(
            ALARM_EMAIL,
            "set together with alarmTopicArn: the stack does not manage a shared topic's "
            "subscriptions",
            "alarmEmail with the stack's own topic (alarmTopicArn empty); subscribe the address "
            "to the shared topic where that topic is managed",
        )
    return topic_arn, email


class _Reader:
    """Typed access to raw config values; every problem becomes a ConfigError naming the key."""

    def __init__(self, raw: Mapping[str, object]) -> None:
        unknown = sorted(set(raw) - set(ALL_KEYS))
        if unknown:
            raise ConfigError(unknown[0], "unknown key", ", ".join(ALL_KEYS))
        self._raw = raw

    def optional_text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(key, f"expected text, got {type(value).__name__}", "a string")
        return value.strip() or None

    def required_text(self, key: str) -> str:
        value = self.optional_text(key)
        if value is None:
            raise ConfigError(key, "missing or empty", f"set it with `pulumi config set {key}`")
        return value

    def text_list(self, key: str) -> list[str]:
        value = self._raw.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(key, "not a JSON list", 'e.g. ["a", "b"]') from None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(key, "expected a list of strings", 'e.g. ["a", "b"]')
        return [item.strip() for item in value]

    def integer(self, key: str, *, default: int | None = None) -> int:
        value = self._raw.get(key)
        if default is not None and (value is None or value == ""):
            return default
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ConfigError(key, f"{value!r} is not a whole number", "an integer") from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(key, "missing or not a whole number", "an integer")
        return value
