"""The local stack: an embedded AWS (moto server) and an ALB stand-in that runs the function.

``make demo`` (``python -m local.demo``) and ``make local`` (``python -m local.serve``) start it
from a stack config file, so the whole flow runs without an AWS account.
"""
