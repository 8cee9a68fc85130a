"""One site's webhook: the edge (own or shared ALB), the routing to the ingest function, the
pipeline from the ingest through a queue to the worker, and the alarms watching it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.alarms import Alarms
from infra.edge import Edge
from infra.function import WebhookFunction
from infra.naming import site_tags
from infra.netlify_hook import hook_body
from infra.pipeline import Pipeline
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
        # The queue before the ingest that sends to it; the alarms last, once the ingest's log
        # group (for the 5xx metric filter) exists.
        self.pipeline = Pipeline(
            f"{name}-pipeline", settings=settings, stack=stack, tags=tags, opts=child
        )
        self.function = WebhookFunction(
            f"{name}-fn",
            settings=settings,
            stack=stack,
            webhook_token=config.webhook_token,
            netlify_jws_secret=config.netlify_jws_secret,
            queue_url=self.pipeline.queue.url,
            queue_arn=self.pipeline.queue.arn,
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

        self.alarms = Alarms(
            f"{name}-alarms",
            settings=settings,
            stack=stack,
            ingest_function_name=self.function.function.name,
            ingest_log_group_name=self.function.log_group.name,
            queue_name=self.pipeline.queue.name,
            dead_letter_queue_name=self.pipeline.dead_letter_queue.name,
            worker_function_name=self.pipeline.worker.name,
            tags=tags,
            opts=child,
        )
        # The provider's region (`aws:region`, or the environment's), as the runbook needs it.
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region

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
            "queue_url": self.pipeline.queue.url,
            "dead_letter_queue_url": self.pipeline.dead_letter_queue.url,
            "worker_function_name": self.pipeline.worker.name,
            "worker_log_group_name": self.pipeline.worker_log_group.name,
            "alarm_topic_arn": self.alarms.topic_arn,
            "region": region,
        }
        self.register_outputs(self.outputs)
