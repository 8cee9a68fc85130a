"""What the ALB does with a request, as pure functions: match the rule, build the Lambda event.

The rule is the condition list ``infra.rule.WebhookRule.conditions`` writes for the Pulumi
program, evaluated by condition type (``conditions_match``); a type not handled here raises.

Facts (ELB and Lambda documentation):

- host-header values are compared case-insensitively; path-pattern values case-sensitively, and
  only against the path; query-string key/value pairs case-insensitively. All three accept the
  wildcards ``*`` (0 or more characters) and ``?`` (exactly one); ``\\`` escapes them in
  query-string values (``infra.rule.escape_query_value`` writes the rule that way).
- The ALB does not URL-decode the query string: the event carries the values as received, and
  the local listener compares the rule against those raw values too. (The docs only say "any
  character can be percentage encoded"; the token alphabet A-Z a-z 0-9 _ - never needs it.)
- Event: ``requestContext.elb.targetGroupArn``, ``httpMethod``, ``path``,
  ``queryStringParameters``, ``headers`` (names lowercased), ``body``, ``isBase64Encoded``;
  with ``lambda.multi_value_headers.enabled`` the event has ``multiValueHeaders`` and
  ``multiValueQueryStringParameters`` instead, and the response must use ``multiValueHeaders``.
  Without it, a repeated header or query key keeps its last value.
- The body is passed as text for ``text/*``, ``application/json``, ``application/javascript``
  and ``application/xml`` without ``Content-Encoding``; otherwise base64.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from infra.rule import WebhookRule

TEXT_MEDIA_TYPES = ("application/json", "application/javascript", "application/xml")
MAX_BODY_BYTES = 1024 * 1024  # request body limit for Lambda targets


@lru_cache(maxsize=64)
def _wildcard_regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.compile("".join(parts), flags)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    r"""Whether ``value`` matches an ALB condition value (``*``, ``?``, ``\`` escapes)."""
    return _wildcard_regex(pattern, case_sensitive).fullmatch(value) is not None


def split_query(raw_query: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` -> ``[("a", "1"), ("b", "2")]``, left URL-encoded as the ALB leaves it."""
    pairs = []
    for part in raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs


def host_without_port(host: str) -> str:
    host = host.strip()
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class UnknownCondition(ValueError):
    """A rule condition the local ALB cannot evaluate (it would otherwise match too much)."""


def _any_value_matches(condition: dict, value: str, *, case_sensitive: bool) -> bool:
    return any(
        wildcard_match(pattern, value, case_sensitive=case_sensitive)
        for pattern in condition.get("values") or ()
    )


def _query_strings_match(pairs: list[dict], raw_query: str) -> bool:
    """One of the key/value pairs is in the query (no key: any key with that value)."""
    received = split_query(raw_query)
    return any(
        (wanted.get("key") is None or wildcard_match(wanted["key"], key, case_sensitive=False))
        and wildcard_match(wanted["value"], value, case_sensitive=False)
        for wanted in pairs
        for key, value in received
    )


def conditions_match(
    conditions: Iterable[Mapping[str, Any]], host: str | None, path: str, raw_query: str
) -> bool:
    """Whether a request meets every condition (pulumi-aws ``ListenerRule`` input shape).

    Within a condition one of its values is enough; a condition type this function does not
    know raises ``UnknownCondition`` rather than being ignored.
    """
    for condition in conditions:
        if len(condition) != 1:
            raise UnknownCondition(f"a condition needs exactly one type: {sorted(condition)}")
        ((kind, spec),) = condition.items()
        if kind == "host_header":
            met = host is not None and _any_value_matches(
                spec, host_without_port(host), case_sensitive=False
            )
        elif kind == "path_pattern":
            met = _any_value_matches(spec, path, case_sensitive=True)
        elif kind == "query_strings":
            met = _query_strings_match(spec, raw_query)
        else:
            raise UnknownCondition(f"the local ALB cannot evaluate a {kind!r} condition")
        if not met:
            return False
    return True


def rule_matches(rule: WebhookRule, host: str | None, path: str, raw_query: str) -> bool:
    """Whether a request meets the rule's conditions, as ``infra.rule`` writes them."""
    return conditions_match(rule.conditions(rule.query_condition_value()), host, path, raw_query)


def is_text_body(content_type: str | None, content_encoding: str | None) -> bool:
    """Whether the ALB passes this body as text (else base64)."""
    if content_encoding:
        return False
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES


def build_event(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    target_group_arn: str,
    multi_value: bool = False,
) -> dict:
    """The Lambda event the ALB sends for this request.

    ``headers`` are (name, value) pairs in arrival order, repeats allowed, including the
    ``x-forwarded-*`` and ``x-amzn-trace-id`` headers the ALB adds.
    """
    header_pairs = [(name.lower(), value) for name, value in headers]
    query_pairs = split_query(raw_query)
    lookup = dict(header_pairs)  # last value wins
    if not body:
        body_text, encoded = "", False
    elif is_text_body(lookup.get("content-type"), lookup.get("content-encoding")):
        body_text, encoded = body.decode("utf-8", errors="replace"), False
    else:
        body_text, encoded = base64.b64encode(body).decode("ascii"), True

    event: dict = {
        "requestContext": {"elb": {"targetGroupArn": target_group_arn}},
        "httpMethod": method,
        "path": path,
    }
    if multi_value:
        event["multiValueQueryStringParameters"] = _multi(query_pairs)
        event["multiValueHeaders"] = _multi(header_pairs)
    else:
        event["queryStringParameters"] = dict(query_pairs)
        event["headers"] = lookup
    event["body"] = body_text
    event["isBase64Encoded"] = encoded
    return event


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


class BadLambdaResponse(ValueError):
    """The function's answer is not one the ALB can turn into HTTP (the ALB answers 502)."""


def response_parts(
    response: object, *, multi_value: bool
) -> tuple[int, str | None, list[tuple[str, str]], bytes]:
    """(status, reason, headers, body) of the HTTP answer the ALB makes from ``response``."""
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        raise BadLambdaResponse("the response has no integer statusCode")
    status = response["statusCode"]
    if not 100 <= status <= 599:
        raise BadLambdaResponse(f"statusCode {status} is not an HTTP status")
    description = response.get("statusDescription")
    reason = None
    if isinstance(description, str) and description.strip():
        code, _, text = description.strip().partition(" ")
        reason = text if code == str(status) and text else description.strip()

    headers: list[tuple[str, str]] = []
    if multi_value:
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(value)) for value in values)
    else:
        headers.extend(
            (name, str(value)) for name, value in (response.get("headers") or {}).items()
        )

    raw_body = response.get("body") or ""
    if not isinstance(raw_body, str):
        raise BadLambdaResponse("body must be a string")
    if response.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except ValueError as error:
            raise BadLambdaResponse(f"body is not base64: {error}") from None
    else:
        body = raw_body.encode("utf-8")
    return status, reason, headers, body
