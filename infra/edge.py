"""Where HTTPS ends: this site's own ALB, or a shared ALB's existing HTTPS listener.

Both modes issue an ACM certificate for the domain, validated through Route53, and point an
alias A record for the domain at the load balancer.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra.settings import LISTENER_ARN, PROJECT, SiteSettings

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
NOT_FOUND_BODY = "Not found"


def _issued(value: str | None, what: str) -> str:
    """A field of the certificate's DNS validation option, which ACM fills in once it exists."""
    if not value:
        raise ValueError(f"ACM returned no DNS validation {what} for the certificate")
    return value


class Edge(pulumi.ComponentResource):
    """Certificate, DNS and the HTTPS listener the site's rule is added to.

    Attributes for the routing: ``listener_arn``, ``load_balancer_dns_name`` and
    ``listener_ready`` (what the rule must wait for).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: SiteSettings,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:Edge", name, None, opts)
        self._name = name
        self._tags = dict(tags)
        self._child = pulumi.ResourceOptions(parent=self)
        self._invoke = pulumi.InvokeOptions(parent=self)

        zone = aws.route53.get_zone(
            name=settings.hosted_zone, private_zone=False, opts=self._invoke
        )
        # Look the shared listener up (and refuse a wrong one) before creating anything.
        listener_arn = settings.listener_arn  # set: a shared ALB; None: the site's own
        shared = None
        if listener_arn is not None:
            shared = self._shared_load_balancer(listener_arn)
        self.certificate_arn = self._validated_certificate(settings.domain, zone.zone_id)
        self.listener_ready: list[pulumi.Resource] = []

        if listener_arn is None or shared is None:
            dns_name, lb_zone_id = self._own_load_balancer(settings)
        else:
            dns_name, lb_zone_id = self._attach_to_shared_listener(listener_arn, shared)
        self.load_balancer_dns_name = pulumi.Output.from_input(dns_name)

        self.alias = aws.route53.Record(
            f"{name}-alias",
            zone_id=zone.zone_id,
            name=settings.domain,
            type="A",
            aliases=[{"name": dns_name, "zone_id": lb_zone_id, "evaluate_target_health": False}],
            opts=self._child,
        )
        self.register_outputs(
            {
                "listener_arn": self.listener_arn,
                "load_balancer_dns_name": self.load_balancer_dns_name,
                "certificate_arn": self.certificate_arn,
            }
        )

    def _validated_certificate(self, domain: str, zone_id: str) -> pulumi.Output[str]:
        """ACM certificate -> DNS validation record -> CertificateValidation (waits for issue)."""
        self.certificate = aws.acm.Certificate(
            f"{self._name}-cert",
            domain_name=domain,
            validation_method="DNS",
            tags=self._tags,
            opts=self._child,
        )
        # One domain and no alternative names: exactly one validation option.
        option = self.certificate.domain_validation_options.apply(lambda options: options[0])
        self.validation_record = aws.route53.Record(
            f"{self._name}-cert-validation",
            zone_id=zone_id,
            name=option.apply(lambda o: _issued(o.resource_record_name, "record name")),
            type=option.apply(lambda o: _issued(o.resource_record_type, "record type")),
            records=[option.apply(lambda o: _issued(o.resource_record_value, "record value"))],
            ttl=60,
            allow_overwrite=True,
            opts=self._child,
        )
        self.validation = aws.acm.CertificateValidation(
            f"{self._name}-cert-validated",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[self.validation_record.fqdn],
            opts=self._child,
        )
        return self.validation.certificate_arn

    def _own_load_balancer(self, settings: SiteSettings) -> tuple[pulumi.Output, pulumi.Output]:
        vpc_id = settings.vpc_id or aws.ec2.get_vpc(default=True, opts=self._invoke).id
        subnet_ids = (
            list(settings.subnet_ids)
            or aws.ec2.get_subnets(
                # The default subnet of each zone: public, and one per zone as an ALB requires
                # (a default VPC may hold other subnets the account added).
                filters=[
                    {"name": "vpc-id", "values": [vpc_id]},
                    {"name": "default-for-az", "values": ["true"]},
                ],
                opts=self._invoke,
            ).ids
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{self._name}-alb-sg",
            description=f"Netlify webhook ALB for {settings.domain}: HTTP and HTTPS in",
            vpc_id=vpc_id,
            ingress=[
                {
                    "description": description,
                    "protocol": "tcp",
                    "from_port": port,
                    "to_port": port,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "ipv6_cidr_blocks": ["::/0"],
                }
                for port, description in ((80, "HTTP (redirected)"), (443, "HTTPS"))
            ],
            # No outbound rule at all (an explicit empty list also removes AWS's default
            # allow-all): the ALB's only targets are a redirect, a fixed response and a Lambda,
            # which "the load balancer invokes directly instead of using a network connection",
            # so its security group needs no outbound rules (ELB guide, Lambda functions as
            # targets).
            egress=[],
            tags=self._tags,
            opts=self._child,
        )
        self.load_balancer = aws.lb.LoadBalancer(
            f"{self._name}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[self.security_group.id],
            subnets=subnet_ids,
            drop_invalid_header_fields=True,
            tags=self._tags,
            opts=self._child,
        )
        self.http_listener = aws.lb.Listener(
            f"{self._name}-http",
            load_balancer_arn=self.load_balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"},
                }
            ],
            tags=self._tags,
            opts=self._child,
        )
        self.https_listener = aws.lb.Listener(
            f"{self._name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=self.certificate_arn,
            default_actions=[
                {
                    "type": "fixed-response",
                    "fixed_response": {
                        "content_type": "text/plain",
                        "message_body": NOT_FOUND_BODY,
                        "status_code": "404",
                    },
                }
            ],
            tags=self._tags,
            opts=self._child,
        )
        self.listener_arn = self.https_listener.arn
        self.listener_ready = [self.https_listener]
        return self.load_balancer.dns_name, self.load_balancer.zone_id

    def _shared_load_balancer(self, listener_arn: str):
        """The shared listener's load balancer; RunError unless the listener serves HTTPS."""
        listener = aws.lb.get_listener(arn=listener_arn, opts=self._invoke)
        if listener.protocol != "HTTPS":
            # A certificate cannot be added to, and the webhook must not be served by, a plain
            # HTTP listener (e.g. the shared ALB's port-80 redirect).
            raise pulumi.RunError(
                f"{PROJECT}:{LISTENER_ARN}: the listener's protocol is {listener.protocol}; "
                "allowed: the shared ALB's HTTPS listener"
            )
        return aws.lb.get_load_balancer(arn=listener.load_balancer_arn, opts=self._invoke)

    def _attach_to_shared_listener(self, listener_arn: str, load_balancer) -> tuple[str, str]:
        # SNI: the shared listener serves this domain's certificate as well as its default one.
        self.listener_certificate = aws.lb.ListenerCertificate(
            f"{self._name}-listener-cert",
            listener_arn=listener_arn,
            certificate_arn=self.certificate_arn,
            opts=self._child,
        )
        self.listener_arn = pulumi.Output.from_input(listener_arn)
        self.listener_ready = [self.listener_certificate]
        return load_balancer.dns_name, load_balancer.zone_id
