"""The listener rule that routes Netlify's notification to the function.

One definition, used by the Pulumi program (the real ALB rule) and by the local stack's
stand-in listener, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from function import webhook_settings
from infra import endpoint
from infra.settings import Secret, SiteSettings

if TYPE_CHECKING:  # types only: the local stack evaluates the same list without Pulumi loaded
    from pulumi_aws.lb import ListenerRuleConditionArgsDict

# The handler reads the token from this query parameter; the rule filters on the same one.
TOKEN_QUERY_KEY = webhook_settings.TOKEN_QUERY_PARAMETER


def escape_query_value(value: str) -> str:
    r"""Escape what an ALB query-string condition treats as wildcards (``*``, ``?``) and ``\``."""
    return value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


@dataclass(frozen=True)
class WebhookRule:
    host: str
    path: str
    token: Secret
    priority: int

    @classmethod
    def from_settings(cls, settings: SiteSettings) -> WebhookRule:
        return cls(
            host=settings.domain,
            path=settings.webhook_path,
            token=settings.webhook_token,
            priority=settings.rule_priority,
        )

    def conditions(self, token_value: Any) -> list[ListenerRuleConditionArgsDict]:
        """The rule's conditions in pulumi-aws ``ListenerRule`` input shape, as plain dicts.

        ``token_value`` is the ``token`` query-string value as the rule holds it: escaped
        (``query_condition_value()``); the Pulumi program passes a secret Output of it.
        """
        return [
            {"host_header": {"values": [self.host]}},
            {"path_pattern": {"values": [self.path]}},
            {"query_strings": [{"key": TOKEN_QUERY_KEY, "value": token_value}]},
        ]

    def query_condition_value(self) -> str:
        """The rule's ``token`` query-string value (secret: never log or export it plainly)."""
        return escape_query_value(self.token.reveal())

    def url(self) -> str:
        """The webhook URL Netlify calls (secret: it carries the token)."""
        return endpoint.webhook_url(
            endpoint.alb_base_url(self.host), self.path, self.token.reveal()
        )
