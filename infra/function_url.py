"""The ``functionUrl`` endpoint: a Lambda function URL in front of the ingest, no load balancer.

A function URL with auth type NONE still answers 403 unless the function's resource policy
lets everyone invoke it. Since October 2025 a new function URL needs two statements (Lambda
guide, "Control access to Lambda function URLs"): ``lambda:InvokeFunctionUrl`` with the
condition ``lambda:FunctionUrlAuthType = NONE``, and ``lambda:InvokeFunction`` with the
condition ``lambda:InvokedViaFunctionUrl = true``. The second condition keeps the grant to
``*`` from covering the Invoke API itself: only calls that come through the URL are allowed.
The webhook's own checks (token, JWS signature, path) do the authentication.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

PUBLIC_PRINCIPAL = "*"
AUTH_TYPE = "NONE"


class FunctionUrlEndpoint(pulumi.ComponentResource):
    """The ingest's function URL and the two resource-policy statements it needs.

    Attribute ``url``: the function URL as Lambda reports it
    (``https://<id>.lambda-url.<region>.on.aws/``, with a trailing slash).
    """

    def __init__(
        self,
        name: str,
        *,
        function: aws.lambda_.Function,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ncw:site:FunctionUrl", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.invoke_url_permission = aws.lambda_.Permission(
            f"{name}-invoke-url",
            action="lambda:InvokeFunctionUrl",
            function=function.name,
            principal=PUBLIC_PRINCIPAL,
            function_url_auth_type=AUTH_TYPE,
            opts=child,
        )
        self.invoke_permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal=PUBLIC_PRINCIPAL,
            invoked_via_function_url=True,
            opts=child,
        )
        self.function_url = aws.lambda_.FunctionUrl(
            f"{name}-url",
            function_name=function.name,
            authorization_type=AUTH_TYPE,
            # Netlify calls server to server: no CORS. BUFFERED (the default): the ingest
            # answers with one small JSON body.
            invoke_mode="BUFFERED",
            # The URL is public once it exists; the permissions first, so its first answers are
            # the webhook's and not a 403 from a policy still being written.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.invoke_url_permission, self.invoke_permission]
            ),
        )
        self.url: pulumi.Output[str] = self.function_url.function_url
        self.register_outputs({"function_url": self.url})
