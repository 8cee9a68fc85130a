"""The path from the listener to the function: target group, permission, attachment, rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra.rule import WebhookRule

ELB_PRINCIPAL = "elasticloadbalancing.amazonaws.com"


class Routing(pulumi.ComponentResource):
    """Lambda target group wired to the function, and the site's listener rule."""

    def __init__(
        self,
        name: str,
        *,
        rule: WebhookRule,
        token_condition_value: pulumi.Input[str],
        listener_arn: pulumi.Input[str],
        listener_ready: Sequence[pulumi.Resource],
        function: aws.lambda_.Function,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:Routing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            target_type="lambda",
            tags=dict(tags),
            opts=child,
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal=ELB_PRINCIPAL,
            source_arn=self.target_group.arn,
            opts=child,
        )
        # Registering a Lambda target fails unless the ALB may already invoke it.
        self.attachment = aws.lb.TargetGroupAttachment(
            f"{name}-attachment",
            target_group_arn=self.target_group.arn,
            target_id=function.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.permission]),
        )
        self.rule = aws.lb.ListenerRule(
            f"{name}-rule",
            listener_arn=listener_arn,
            priority=rule.priority,
            # token_condition_value is a secret Output: the rule's input stays secret.
            conditions=rule.conditions(token_condition_value),
            actions=[{"type": "forward", "target_group_arn": self.target_group.arn}],
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.attachment, *listener_ready]),
        )
        self.register_outputs({"target_group_arn": self.target_group.arn})
