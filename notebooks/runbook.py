# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Netlify → CloudFront webhook: operator runbook
#
# Run it top to bottom. It tells you which account and stack you are looking at, checks the
# CloudFront distributions and the pipeline (queue, dead letters, alarms), sends a signed test
# deploy notification exactly as Netlify would, follows the invalidation the worker creates until
# CloudFront reports it Completed, and shows the invalidation history and its cost. Nothing
# beyond that test notification changes state unless you set `dry_run = False` or
# `redrive_dead_letters = True`.
#
# - **Local stack:** `make local` prints the environment (`AWS_ENDPOINT_URL`, `NCW_*`); start
#   Jupyter from that shell. `make demo` runs this notebook for you.
# - **Real stack:** with the `pulumi` CLI logged in, the stack's outputs are read with
#   `pulumi stack output --show-secrets`; without it, set the `NCW_*` variables.
# - Secrets (webhook token, JWS secret, Netlify token) come from the stack or the environment,
#   never from this file, and are shown masked.

# %% tags=["parameters"]
stack = None  # stack name; None: $NCW_STACK, else dev
region = None  # None: $AWS_REGION, $AWS_DEFAULT_REGION or the stack file
aws_endpoint_url = None  # None: real AWS, or $AWS_ENDPOINT_URL
webhook_url = None  # None: stack output or $NCW_WEBHOOK_URL; give it without ?token=
distribution_id = None  # None: the first configured distribution
deploy_id = None  # None: section 4 sends a fresh test notification
notification_status = None  # with deploy_id: the HTTP status the caller's notification got
wait_timeout_s = 300  # section 5 stops waiting after this many seconds
poll_interval_s = 10  # seconds between status checks in section 5
dry_run = True  # False: section 7 invalidates and section 9 calls the Netlify API
redrive_dead_letters = False  # True: section 3 moves the dead letters back to the queue
manual_paths = ["/index.html"]  # paths for section 7
history_limit = 25  # newest invalidations per distribution in section 6
summary_path = None  # when set, a JSON summary of the run is written there

# %%
import runbook_lib as rb

config = rb.load_config(stack, region, aws_endpoint_url, webhook_url, distribution_id)
aws = rb.AwsClients(config)

# %% [markdown]
# ## 1. Where am I? Account, region, stack, webhook and distributions
#
# Check the account and the stack before anything else: the rest of the runbook acts on them.

# %%
here = rb.where_am_i(config, aws)
rb.show(here)

# %% [markdown]
# ## 2. Are the distributions healthy and shaped as designed?
#
# Netlify serves the site through the default behavior and an S3 origin serves `/pdf/*`.
# Anything else (disabled, still deploying, a missing `/pdf/*` behavior) is flagged.

# %%
health = rb.distributions_health(config, aws)
rb.show(health or "**Skipped:** no distribution to inspect (see section 1).")

# %% [markdown]
# ## 3. Is the pipeline flowing? Queue, dead letters and alarms
#
# The webhook queues one message per distribution; the worker turns each into an invalidation,
# retrying while CloudFront is busy. What can never succeed (or still fails after about two
# hours) lands in the dead-letter queue: those invalidations did not happen. The tables show the
# queue's depth and oldest message, up to 50 dead letters with their error, and the stack's
# alarms. Reading the dead letters leaves them where they are.

# %%
pipeline = rb.pipeline_status(config, aws)
rb.show(pipeline)

# %% [markdown]
# ### Move the dead letters back to the queue (guarded by `redrive_dead_letters`)
#
# Fix the cause first (the `error` column). With `redrive_dead_letters = True`, each message
# goes back to the queue unchanged and is deleted from the dead-letter queue only once it is
# there; the worker then tries it again. At most 100 a run.

# %%
redriven = rb.redrive(config, aws, enabled=redrive_dead_letters)
rb.show(redriven)

# %% [markdown]
# ## 4. Trigger: send a signed test deploy notification, as Netlify does
#
# A `deploy_created` ("Deploy succeeded") notification for a fresh deploy id, signed with the
# JWS secret when one is configured. If `deploy_id` is given, the notification was already sent
# (e.g. by `make demo` or by Netlify) and this only reports it, with `notification_status` when
# the caller passes the answer it got.

# %%
sent = rb.trigger(config, deploy_id, notification_status=notification_status)
rb.show(sent)

# %% [markdown]
# ## 5. Verify: find the worker's invalidation and wait until it completes
#
# The invalidation is found by the caller reference the webhook derives from the deploy id and
# the configured paths. The wait stops at `wait_timeout_s` with advice; re-running is safe.

# %%
verified = rb.verify(
    config, aws, sent.deploy_id, wait_timeout_s=wait_timeout_s, poll_interval_s=poll_interval_s
)
rb.show(verified)

# %% [markdown]
# ## 6. History: recent invalidations, paths per month and this month's cost
#
# The table holds the newest `history_limit` per distribution; the month's paths and cost count
# every invalidation made this month. The first 1,000 paths a month are free per AWS account,
# then USD 0.005 a path; `/*` is one path.

# %%
past = rb.history(config, aws, limit=history_limit)
rb.show(past, past.usage)
if past.usage:
    rb.show(rb.history_chart(past.charted))

# %% [markdown]
# ## 7. Invalidate paths by hand (guarded by `dry_run`)
#
# The paths are checked with the function's own rules; with `dry_run = True` you see the exact
# request that would be sent.

# %%
manual_result = rb.manual(config, aws, manual_paths, dry_run=dry_run)
rb.show(manual_result)

# %% [markdown]
# ## 8. Troubleshooting: the functions' recent errors and what each answer means
#
# The webhook's function (it answers Netlify and queues), then the worker (it calls CloudFront).

# %%
errors = rb.function_errors(config, aws)
worker_errors = rb.worker_errors(config, aws)
rb.show(errors, worker_errors, rb.answers_table())

# %% [markdown]
# ## 9. Connect Netlify: the deploy notification for this stack
#
# Shows the hook body (secrets masked). With `NETLIFY_AUTH_TOKEN` in the environment and
# `dry_run = False`, creates the notification through Netlify's hooks API, or updates the
# existing one for the same URL: never a duplicate. Never against the local stack, nor for a
# webhook URL Netlify cannot reach (not https, or a loopback/private address).

# %%
hook = rb.connect(config, dry_run=dry_run)
rb.show(hook)

# %% [markdown]
# ## Recap

# %%
summary = rb.run_summary(
    config=config,
    trigger_result=sent,
    verify_result=verified,
    history_result=past,
    health=health,
    manual_result=manual_result,
    errors=errors,
    hook=hook,
    pipeline=pipeline,
    redrive_result=redriven,
    worker_errors=worker_errors,
)
rb.write_summary(summary_path, summary)
rb.show(rb.recap(summary))
