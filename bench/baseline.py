"""The naive handler the benchmark compares against, written the way the original recipe is.

A new boto3 client for every request, the settings and the secret read on every request, no
caching of any kind. It checks less than ``handler.handler`` (no signature, no decisions) and
still has to be slower: the cost is in the clients and the extra SSM call.
"""

from __future__ import annotations

import json
import os
import time

import boto3


def handler(event, context):
    ssm = boto3.client("ssm")
    cloudfront = boto3.client("cloudfront")
    parameter = ssm.get_parameter(Name=os.environ["SECRETS_PARAMETER"], WithDecryption=True)
    token = json.loads(parameter["Parameter"]["Value"])["token"]
    if (event.get("queryStringParameters") or {}).get("token") != token:
        return {"statusCode": 401, "body": "unauthorized"}
    deploy = json.loads(event["body"])
    for distribution_id in os.environ["DISTRIBUTION_IDS"].split(","):
        cloudfront.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": str(time.time()),
            },
        )
    return {"statusCode": 200, "body": json.dumps({"deploy": deploy["id"]})}
