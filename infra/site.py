"""One site's webhook: the function, the edge (own or shared ALB) and the routing between."""

from __future__ import annotations

import pulumi

from infra.edge import Edge
from infra.function import WebhookFunction
from infra.naming import site_tags
from infra.netlify_hook import hook_body
from infra.pulumi_config import StackConfig
from infra.routing import Routing
from infra.rule import WebhookRule


class SiteWebhook(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: StackConfig,
        *,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:Webhook", name, None, opts)
        settings = config.settings
        # Tags are set explicitly on every taggable resource rather than as provider default
        # tags: the stack keeps the default provider, configured by `aws:region` and the usual
        # credentials (an explicit provider carrying default_tags would need the region passed
        # in and every child to name it), and each resource's own inputs show its tags in
        # previews and tests. Resources of a shared ALB are not this stack's to tag.
        tags = site_tags(stack, settings.domain)
        child = pulumi.ResourceOptions(parent=self)

        # The edge first: in shared mode it checks the given listener before anything exists.
        self.edge = Edge(f"{name}-edge", settings=settings, tags=tags, opts=child)
        self.function = WebhookFunction(
            f"{name}-fn",
            settings=settings,
            stack=stack,
            webhook_token=config.webhook_token,
            netlify_jws_secret=config.netlify_jws_secret,
            tags=tags,
            opts=child,
        )

        # The rule as the local stack emulates it. Its token is the validated config secret;
        # everything derived from it is wrapped as a secret Output before it reaches Pulumi.
        rule = WebhookRule.from_settings(settings)
        self.routing = Routing(
            f"{name}-routing",
            rule=rule,
            token_condition_value=pulumi.Output.secret(rule.query_condition_value()),
            listener_arn=self.edge.listener_arn,
            listener_ready=self.edge.listener_ready,
            function=self.function.function,
            tags=tags,
            opts=child,
        )

        self.webhook_url = pulumi.Output.secret(rule.url())
        self.netlify_hook = pulumi.Output.secret(
            pulumi.Output.all(self.webhook_url, config.netlify_jws_secret).apply(
                lambda values: hook_body(values[0], values[1])
            )
        )
        self.outputs = {
            "webhook_url": self.webhook_url,
            "netlify_hook": self.netlify_hook,
            "function_name": self.function.function.name,
            "function_arn": self.function.function.arn,
            "log_group_name": self.function.log_group.name,
            "secrets_parameter_name": self.function.parameter.name,
            "distribution_ids": list(settings.distribution_ids),
            # Not in the list Netlify needs: the runbook derives the caller reference from it.
            "invalidation_paths": list(settings.invalidation_paths),
            "listener_arn": self.edge.listener_arn,
            "load_balancer_dns_name": self.edge.load_balancer_dns_name,
        }
        self.register_outputs(self.outputs)
