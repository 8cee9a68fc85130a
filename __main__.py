"""Netlify deploy notification -> ALB or function URL -> queue -> CloudFront, for one site.

Stack config -> validated settings (nothing is registered if a value is bad) -> components ->
stack outputs.
"""

import pulumi

from infra.pulumi_config import read_stack_config
from infra.site import SiteWebhook

config = read_stack_config()
site = SiteWebhook("site", config, stack=pulumi.get_stack())

for output_name, value in site.outputs.items():
    pulumi.export(output_name, value)
