"""Logging set-up shared by every function of the package. Standard library only.

Lambda's JSON log format turns each record (with its ``extra=`` fields) into one JSON line. The
AWS SDK logs request and response bodies and signed headers at DEBUG: SSM's answer is the
decrypted secret, and every signed request carries the session token. Its loggers are held at
WARNING or above, whatever Lambda's log level.
"""

from __future__ import annotations

import logging
import os

SDK_LOGGERS = ("boto3", "botocore", "urllib3", "s3transfer")


def configure(logger: logging.Logger) -> None:
    """Set ``logger`` to Lambda's application log level and clamp the SDK's loggers.

    Called at import and again whenever a client is made: Lambda's ``AWS_LAMBDA_LOG_LEVEL=DEBUG``
    lowers the root logger, and with it the SDK's, and a child may have been given a level of
    its own.
    """
    # Lambda's application log level (JSON log format); its TRACE is DEBUG to Python.
    name = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper().replace("TRACE", "DEBUG")
    level = logging.getLevelName(name)
    logger.setLevel(level if isinstance(level, int) else logging.INFO)
    names = [n for n in logging.root.manager.loggerDict if n.partition(".")[0] in SDK_LOGGERS]
    for sdk_name in {*SDK_LOGGERS, *names}:
        sdk_logger = logging.getLogger(sdk_name)
        if sdk_logger.level < logging.INFO and (sdk_logger.level or "." not in sdk_name):
            sdk_logger.setLevel(logging.WARNING)
