"""One site's webhook: the endpoint (an ALB, own or shared, or a Lambda function URL), the
pipeline from the ingest through a queue to the worker, the optional reconciler, and the alarms
watching all of it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra import endpoint
from infra.alarms import Alarms
from infra.edge import Edge
from infra.function import WebhookFunction
from infra.function_url import FunctionUrlEndpoint
from infra.naming import site_tags
from infra.netlify_hook import hook_bodies
from infra.pipeline import Pipeline
from infra.pulumi_config import StackConfig
from infra.reconciler import Reconciler
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
        self.edge: Edge | None = None
        if not settings.uses_function_url:
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
            netlify_api_token=config.netlify_api_token,
            queue_url=self.pipeline.queue.url,
            queue_arn=self.pipeline.queue.arn,
            tags=tags,
            opts=child,
        )

        # The token is the validated config secret; everything derived from it is wrapped as a
        # secret Output before it reaches Pulumi. The endpoint without the query (what the
        # reconciler recognises our hooks by) carries no token and stays plain.
        token = settings.webhook_token.reveal()
        path = settings.webhook_path
        self.function_url: FunctionUrlEndpoint | None = None
        self.routing: Routing | None = None
        if self.edge is None:
            self.function_url = FunctionUrlEndpoint(
                f"{name}-url", function=self.function.function, opts=child
            )
            base_url = self.function_url.url
            self.webhook_url = pulumi.Output.secret(
                base_url.apply(lambda base: endpoint.webhook_url(base, path, token))
            )
            webhook_endpoint = base_url.apply(lambda base: endpoint.webhook_endpoint(base, path))
        else:
            # The rule as the local stack emulates it.
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
            webhook_endpoint = pulumi.Output.from_input(
                endpoint.webhook_endpoint(endpoint.alb_base_url(settings.domain), path)
            )

        self.reconciler: Reconciler | None = None
        if settings.reconciler_enabled:
            self.reconciler = Reconciler(
                f"{name}-reconciler",
                settings=settings,
                stack=stack,
                parameter_name=self.function.parameter_name,
                parameter_arn=self.function.parameter.arn,
                parameter_version=self.function.parameter.version,
                queue_url=self.pipeline.queue.url,
                queue_arn=self.pipeline.queue.arn,
                dead_letter_queue_url=self.pipeline.dead_letter_queue.url,
                dead_letter_queue_arn=self.pipeline.dead_letter_queue.arn,
                webhook_endpoint=webhook_endpoint,
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
            reconciler_function_name=(
                self.reconciler.function.name if self.reconciler is not None else None
            ),
            tags=tags,
            opts=child,
        )
        # The provider's region (`aws:region`, or the environment's), as the runbook needs it.
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region

        # One hooks-API body per Netlify event, same URL and JWS secret.
        self.netlify_hooks = pulumi.Output.secret(
            pulumi.Output.all(self.webhook_url, config.netlify_jws_secret).apply(
                lambda values: hook_bodies(values[0], values[1])
            )
        )
        self.outputs: dict[str, object] = {
            "endpoint": settings.endpoint,
            "webhook_url": self.webhook_url,
            "netlify_hooks": self.netlify_hooks,
            "function_name": self.function.function.name,
            "function_arn": self.function.function.arn,
            "log_group_name": self.function.log_group.name,
            "secrets_parameter_name": self.function.parameter.name,
            "distribution_ids": list(settings.distribution_ids),
            # Not in the list Netlify needs: the runbook derives the caller reference from it.
            "invalidation_paths": list(settings.invalidation_paths),
            "queue_url": self.pipeline.queue.url,
            "dead_letter_queue_url": self.pipeline.dead_letter_queue.url,
            "worker_function_name": self.pipeline.worker.name,
            "worker_log_group_name": self.pipeline.worker_log_group.name,
            "alarm_topic_arn": self.alarms.topic_arn,
            "region": region,
        }
        if self.edge is not None:
            # Only an ALB has them.
            self.outputs["listener_arn"] = self.edge.listener_arn
            self.outputs["load_balancer_dns_name"] = self.edge.load_balancer_dns_name
        if self.reconciler is not None:
            self.outputs["reconciler_function_name"] = self.reconciler.function.name
            self.outputs["reconciler_log_group_name"] = self.reconciler.log_group.name
        self.register_outputs(self.outputs)
