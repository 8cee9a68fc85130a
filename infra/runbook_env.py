"""The runbook's environment: the variables that point the notebook at a stack.

The local stack (``local/``) exports them and the runbook (``notebooks/runbook_lib``) reads them;
an operator may set them by hand. Pure Python, so the notebook kernel can import it.
"""

RUNBOOK_ENV = {
    "stack": "NCW_STACK",
    "webhook_url": "NCW_WEBHOOK_URL",  # secret: it carries the token
    "webhook_host": "NCW_WEBHOOK_HOST",
    "jws_secret": "NCW_JWS_SECRET",  # secret
    "distribution_ids": "NCW_DISTRIBUTION_IDS",
    "invalidation_paths": "NCW_INVALIDATION_PATHS",
    "function_name": "NCW_FUNCTION_NAME",
    "log_group": "NCW_LOG_GROUP",
    "netlify_site_id": "NCW_NETLIFY_SITE_ID",
    "secrets_parameter": "NCW_SECRETS_PARAMETER",
    # The durable pipeline (queue -> worker -> CloudFront) and its alarms.
    "queue_url": "NCW_QUEUE_URL",
    "dead_letter_queue_url": "NCW_DEAD_LETTER_QUEUE_URL",
    "worker_function_name": "NCW_WORKER_FUNCTION_NAME",
    "worker_log_group": "NCW_WORKER_LOG_GROUP",
    "alarm_topic_arn": "NCW_ALARM_TOPIC_ARN",
    "region": "NCW_REGION",
    # The endpoint mode ("alb" or "functionUrl") and the reconciler (optional per site).
    "endpoint": "NCW_ENDPOINT",
    "reconciler_function_name": "NCW_RECONCILER_FUNCTION_NAME",
    "reconciler_log_group": "NCW_RECONCILER_LOG_GROUP",
}
