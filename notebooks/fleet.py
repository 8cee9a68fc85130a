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
# # Netlify to CloudFront webhook: the fleet
#
# Every site stack in one table: its endpoint mode, distributions, newest invalidation (status
# and age), queue and dead-letter depth, alarms, the reconciler's last findings and this
# month's paths; then the paths and cost per AWS account across all sites (the free 1,000
# paths a month are per account). It reads and changes nothing. The site runbook
# (`runbook.ipynb`) goes deeper into one stack.
#
# - **Real stacks:** the Pulumi CLI lists them (`pulumi stack ls`) and reads each one's outputs.
# - **Local stack:** `make local` serves every stack file and exports `NCW_FLEET_FILE`.
# - **Report:** `python -m runbook_lib.report --fleet` writes `out/fleet-<UTC time>.html`.

# %% tags=["parameters"]
stacks: list[str] = []  # empty: every stack; else these (a list, or one comma-separated string)
aws_endpoint_url: str = ""  # empty: real AWS, or $AWS_ENDPOINT_URL (the local stack)
log_window_hours: float = 24  # how far back the reconciler's last run is looked for
summary_path: str = ""  # where the JSON summary is written (the report sets it)

# %%
import runbook_lib as rb
from runbook_lib import fleet as fl

rb.show_verdict_placeholder()  # filled in by the recap

# %% [markdown]
# ## 1. Every stack
#
# One row per stack; `why` says what made a row WARN or FAIL. A distribution that two stacks
# configure shows under both.

# %%
fleet = fl.fleet_view(stacks, aws_endpoint_url=aws_endpoint_url, window_hours=log_window_hours)
rb.show(fleet)

# %% [markdown]
# ## 2. Paths and cost this month, per AWS account
#
# Every distribution counted once per account. The first 1,000 paths a month are free per
# account, then USD 0.005 a path; `/*` is one path.

# %%
rb.show(fleet.accounts_table(), fl.fleet_chart(fleet))

# %% [markdown]
# ## Recap

# %%
summary = fleet.summary()
rb.write_summary(summary_path, summary)
rb.show(rb.recap(summary, "every stack"))
rb.show_verdict(fleet.verdict(), "every stack", summary["generated_at"])

# %% [markdown]
# The last cell stops the run when the verdict is FAIL, after the summary is written.

# %% tags=["verdict-gate"]
rb.gate(summary)
