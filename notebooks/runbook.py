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
# # Netlify to CloudFront webhook: operator runbook
#
# Run it top to bottom: it inspects one site stack and changes nothing. It tells you which
# account and stack you are looking at, checks the whole path (functions, secrets, account,
# distributions and their invalidations in progress), the pipeline (queue, dead letters,
# alarms) and the reconciler, verifies the webhook's invalidation on every distribution, shows
# the history and this month's cost, the functions' errors, and the site's Netlify hooks. The
# verdict (PASS, WARN or FAIL, with its reasons) is just below and in the recap.
#
# Each write has its own switch, all off: `send_test_notification` (purges the stack's paths
# on every distribution), `invalidate_paths` (with `manual_paths`), `register_netlify_hooks`,
# `enable_disabled_hooks` and `redrive_dead_letters`.
#
# - **Local stack:** `make local` prints the environment (`AWS_ENDPOINT_URL`, `NCW_*`); start
#   Jupyter from that shell. `make demo` runs this notebook for you.
# - **Real stack:** with the `pulumi` CLI logged in, the stack's outputs are read with
#   `pulumi stack output --show-secrets`; without it, set the `NCW_*` variables.
# - **Report:** `python -m runbook_lib.report -p stack prod` writes
#   `out/runbook-prod-<UTC time>.html` (no code, readable offline) with the executed notebook
#   and a JSON summary beside it; it exits non-zero when the verdict is FAIL.
# - Secrets (webhook token, JWS secret, Netlify token) come from the stack or the environment,
#   never from this file, and are shown masked.

# %% tags=["parameters"]
stack: str = ""  # the stack; empty: $NCW_STACK, else dev
region: str = ""  # empty: the stack's region (output, NCW_REGION, stack file), then AWS_REGION
aws_endpoint_url: str = ""  # empty: real AWS, or $AWS_ENDPOINT_URL (the local stack)
webhook_url: str = ""  # empty: stack output or NCW_WEBHOOK_URL; give it without its token
distribution_id: str = ""  # empty: every distribution; else sections 5, 6 and 8 use this one
deploy_id: str = ""  # a deploy to verify, e.g. Netlify's last production deploy
notification_status: int = 0  # with deploy_id: the HTTP status its notification got (0: unknown)
send_test_notification: bool = False  # True: section 5 sends a signed test notification
test_event: str = "deploy_created"  # its event: deploy_created, or deploy_restored (a rollback)
wait_timeout_s: float = 300  # section 6 stops waiting after this many seconds
poll_interval_s: float = 10  # seconds between status checks in section 6
log_window_hours: float = 24  # how far back sections 4 and 9 read the logs
request_id: str = ""  # section 9 lists every log record of this request
history_limit: int = 25  # newest invalidations per distribution in section 7
invalidate_paths: bool = False  # True: section 8 invalidates manual_paths
manual_paths: list[str] = ["/index.html"]  # for section 8: a list, or one comma-separated string
register_netlify_hooks: bool = False  # True: section 10 creates or updates both Netlify hooks
enable_disabled_hooks: bool = False  # True: section 10 re-enables hooks Netlify disabled
redrive_dead_letters: bool = False  # True: section 3 moves the dead letters back to the queue
summary_path: str = ""  # where the JSON summary is written (the report sets it)

# %%
import runbook_lib as rb

rb.show_verdict_placeholder()  # filled in by the recap
config = rb.load_config(stack, region, aws_endpoint_url, webhook_url, distribution_id)
aws = rb.AwsClients(config)

# %% [markdown]
# ## 1. Where am I? Account, region, stack, webhook and distributions
#
# Check the account and the stack before anything else: the rest of the runbook reads them. The
# source column says where each value came from (parameter, stack output, variable or file).

# %%
here = rb.where_am_i(config, aws)
rb.show(here)

# %% [markdown]
# ## 2. Is the whole path healthy?
#
# The credentials' account is the stack's; the ingest, the worker and the reconciler exist and
# run the runtime the program deploys; the ingest runs with the secrets parameter's current
# version; each distribution keeps the site's shape (Netlify serves the site, an S3 origin
# serves `/pdf/*`) and has room for the next deploy's invalidation (CloudFront allows 15
# wildcard paths and 3,000 file paths in progress per distribution).

# %%
health = rb.path_health(config, aws, account=here.account)
rb.show(health)

# %% [markdown]
# ## 3. Is the pipeline flowing? Queue, dead letters and alarms
#
# The webhook queues one message per distribution; the worker turns each into an invalidation,
# retrying while CloudFront is busy. What can never succeed (or still fails after about two
# hours) lands in the dead-letter queue: those invalidations did not happen. Reading the dead
# letters leaves them where they are.

# %%
pipeline = rb.pipeline_status(config, aws)
rb.show(pipeline)

# %% [markdown]
# ### Move the dead letters back to the queue (`redrive_dead_letters`)
#
# Fix the cause first (the `error` column). With `redrive_dead_letters = True`, each message
# goes back to the queue unchanged and is deleted from the dead-letter queue only once it is
# there; the worker then tries it again. At most 100 a run.

# %%
redriven = rb.redrive(config, aws, enabled=redrive_dead_letters)
rb.show(redriven)

# %% [markdown]
# ## 4. The reconciler: publishes the webhook missed, hooks Netlify switched off
#
# On a stack with a Netlify API token, the reconciler compares Netlify's published deploy with
# the invalidations every few minutes and queues what is missing. Its last run (over
# `log_window_hours`) and its metrics.

# %%
reconciler = rb.reconciler_status(config, aws, window_hours=log_window_hours)
rb.show(reconciler)

# %% [markdown]
# ## 5. Trigger: a signed test deploy notification, only when asked
#
# With `send_test_notification = True`: a `test_event` notification, signed with the JWS secret
# as Netlify signs it (for `deploy_id` when given, else a fresh deploy). Otherwise nothing is
# sent, and the next section verifies `deploy_id`, or the newest invalidation the webhook made.

# %%
sent = rb.trigger(
    config,
    deploy_id,
    send_test_notification=send_test_notification,
    event=test_event,
    notification_status=notification_status,
)
rb.show(sent)

# %% [markdown]
# ## 6. Verify: the invalidation on every distribution, until it completes
#
# Found by the exact caller reference the webhook answered with, else by the deploy's reference
# prefix, else the newest webhook invalidation. One wait for all, stopped at `wait_timeout_s`
# with advice, skipped when the trigger was refused; re-running is safe.

# %%
verified = rb.verify(
    config, aws, sent, wait_timeout_s=wait_timeout_s, poll_interval_s=poll_interval_s
)
rb.show(verified)

# %% [markdown]
# ## 7. History: recent invalidations, paths per month and this month's cost
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
# ## 8. Invalidate paths by hand (`invalidate_paths`)
#
# The paths are normalized and checked with the function's own rules and sent to every
# distribution acted on; with `invalidate_paths = False` you see the exact request instead.

# %%
manual_result = rb.manual(config, aws, manual_paths, enabled=invalidate_paths)
rb.show(manual_result)

# %% [markdown]
# ## 9. Troubleshooting: the functions' errors, a deploy's or a request's records
#
# Errors of the ingest, the worker and the reconciler over `log_window_hours`; with `deploy_id`
# (or the test notification's) and `request_id`, every record that names them. Then what each
# answer of the webhook means.

# %%
trouble = rb.troubleshoot(
    config,
    aws,
    window_hours=log_window_hours,
    deploy_id=sent.deploy_id,
    request_id=request_id,
)
rb.show(trouble, rb.answers_table())

# %% [markdown]
# ## 10. Connect Netlify: the site's two deploy notifications
#
# One hook per event (`deploy_created`, `deploy_restored`), same URL and JWS secret. With
# `NETLIFY_AUTH_TOKEN` set, each is shown present, disabled or missing;
# `register_netlify_hooks = True` creates or updates both (never a duplicate),
# `enable_disabled_hooks = True` re-enables a disabled one.

# %%
hooks = rb.connect(config, register=register_netlify_hooks, enable_disabled=enable_disabled_hooks)
rb.show(hooks)

# %% [markdown]
# ## Recap

# %%
summary = rb.run_summary(
    config=config,
    where=here,
    health=health,
    pipeline=pipeline,
    redrive_result=redriven,
    reconciler=reconciler,
    trigger_result=sent,
    verification=verified,
    history_result=past,
    manual_result=manual_result,
    troubleshooting=trouble,
    hooks=hooks,
)

# %%
rb.write_summary(summary_path, summary)
rb.show(rb.recap(summary))
rb.show_verdict(rb.verdict_of(summary), f"stack {config.stack}", summary["generated_at"])

# %% [markdown]
# The last cell stops the run when the verdict is FAIL, after the summary is written, so
# papermill, `make demo` and CI exit non-zero.

# %% tags=["verdict-gate"]
rb.gate(summary)
