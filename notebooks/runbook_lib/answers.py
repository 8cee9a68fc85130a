"""What each answer of the webhook means and what to do about it.

Section 9 shows the whole table; section 5 explains the one answer it got.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

ANSWERS: tuple[dict[str, str], ...] = (
    {
        "answer": "202 queued",
        "meaning": "Accepted: one message per distribution is in the queue (listed in the body); "
        "the worker makes the invalidations, retrying while CloudFront is busy.",
        "fix": "Nothing. Section 6 follows the invalidations to Completed; section 3 shows what "
        "is still queued or dead-lettered.",
    },
    {
        "answer": "200 ignored",
        "meaning": "Authenticated, but not a deploy we act on: another event than "
        "deploy_created or deploy_restored, state not 'ready', or a context outside "
        "deployContexts.",
        "fix": "Expected for previews and failed builds. If production deploys are ignored, check "
        "the hooks' events (Deploy succeeded, Deploy restored) and the stack's deployContexts.",
    },
    {
        "answer": "400",
        "meaning": "The body is not a JSON object with a string `id` (not a Netlify Deploy).",
        "fix": "Only Netlify's deploy notifications belong here; check what is calling the URL.",
    },
    {
        "answer": "401",
        "meaning": "Not authenticated: the `token` in the URL is wrong, or the JWS signature is "
        "missing, invalid or made with another secret.",
        "fix": "Re-copy the webhook URL from `pulumi stack output --show-secrets webhook_url` into "
        "the Netlify notification and set its 'JWS secret token' to the stack's "
        "netlifyJwsSecret (section 10 does both).",
    },
    {
        "answer": "403",
        "meaning": "Authenticated, but refused: the deploy's site_id is not the stack's "
        "netlifySiteId, or `dist=` names a distribution this site may not invalidate.",
        "fix": "Use the site's own webhook URL; fix netlifySiteId/distributionIds in the stack "
        "config and `pulumi up`.",
    },
    {
        "answer": "404",
        "meaning": "From the ALB: the listener rule did not match (wrong host, path or token "
        "query string) and the function never ran. Behind a function URL: the path is not the "
        "stack's webhookPath.",
        "fix": "Use the exact webhook URL (the stack output `webhook_url`).",
    },
    {
        "answer": "405",
        "meaning": "Not a POST.",
        "fix": "Netlify always POSTs; something else is calling the URL.",
    },
    {
        "answer": "413",
        "meaning": "The body is larger than 1 MB (the ALB's Lambda limit).",
        "fix": "Netlify's Deploy objects are far smaller: check what is calling the URL.",
    },
    {
        "answer": "500",
        "meaning": "A bad function setting (the reason names the variable: QUEUE_URL when the "
        "queue is missing or refuses the send), or an unexpected error (the reason carries a "
        "request id).",
        "fix": "Pass that request id as `request_id`: section 9 lists its records. Fix the stack "
        "config and `pulumi up`.",
    },
    {
        "answer": "502 (from the ALB)",
        "meaning": "An HTML body from the ALB itself: the function crashed or timed out. (A "
        "permanent CloudFront refusal no longer reaches Netlify: the worker dead-letters it.)",
        "fix": "Read section 9's errors. Refusals such as AccessDenied or NoSuchDistribution "
        "show in section 3's dead letters with their error code.",
    },
    {
        "answer": "503",
        "meaning": "The queue did not accept the message(s) within the function's time budget "
        "(SQS throttling or 5xx); the body lists what was queued and carries Retry-After.",
        "fix": "Safe to redeliver from Netlify (same deploy = same caller reference, no double "
        "invalidation).",
    },
)


def answers_table() -> pd.DataFrame:
    return pd.DataFrame(list(ANSWERS), columns=["answer", "meaning", "fix"])


def explain_answer(status: int, body: Any = None) -> str:
    """One line: what this answer from the webhook means and what to do."""
    key = str(status)
    if status == 200 and isinstance(body, dict) and body.get("status") == "ignored":
        key = "200 ignored"
    elif status == 202:
        key = "202 queued"
    elif status == 502:
        key = "502 (from the ALB)"
    for row in ANSWERS:
        if row["answer"] == key:
            return f"**{row['answer']}**: {row['meaning']} *Fix:* {row['fix']}"
    return ""
