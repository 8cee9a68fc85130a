"""``make bench``: the function's warm latency and cold import cost (``python -m bench``)."""
