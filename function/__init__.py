"""The Lambda package: Netlify deploy notifications -> CloudFront invalidations.

Ships to Lambda as this folder (handler string ``function.handler.handler``); standard library
and boto3 only. The Pulumi program, the local stack and the runbook import its contract from
here (``function.webhook_settings``), so the environment's names and rules live in one place.
"""
