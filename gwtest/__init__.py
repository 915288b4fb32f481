"""Helpers shared by the tests (tests/) and the benchmarks (bench/); not shipped in the wheel.

    gwtest.db          connection strings, fresh databases, throwaway roles, migrating, server statistics
    gwtest.procs       child processes that report their failures, groups of them, the installer CLI
    gwtest.timing      logging, polling with a deadline, medians and percentiles, server CPU time
    gwtest.results     where benchmark results go, and the environment they were measured in
    gwtest.model       a Python model of the queue: what each SQL function returns and leaves behind
    gwtest.strategies  hypothesis strategies: hostile input, random queue states, random argv and DSNs
    gwtest.runner      loading a state, calling a function, checking it against the model

`make venv` installs the checkout in editable mode, so `import gwtest` works from tests and from
bench/*.py alike; pyproject's wheel target lists only `installer`, so the wheel carries none of this.
"""
