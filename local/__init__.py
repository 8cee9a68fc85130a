"""The local stack: an embedded AWS (moto server), stand-ins for what moto cannot run (the ALB's
listener rule or the function URL in front of the ingest, the SQS event source mapping in front
of the worker, the reconciler's schedule) and a fake of Netlify's API.

``make demo`` (``python -m local.demo``) and ``make local`` (``python -m local.serve``) start it
from the stack config files, every site stack in one process (``local.fleet``), so the whole
flow runs without an AWS account.
"""
