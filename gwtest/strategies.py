"""Hypothesis strategies for the property-based tests: hostile text and numbers, payloads, random queue states
(written into the private tables by gwtest.runner.load), job specs, id and worker arrays, and random argv
and DSNs for the CLI. SETTINGS is the tests' hypothesis profile; BIG_SETTINGS runs the 100,000-element
arrays a few times only.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .model import BIGINT, GARBAGE_TS, INT, OUT_OF_RANGE_TS, SMALLINT, TIMESTAMPS

BIG = 100_000  # elements in a big array


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    # CI replays the same examples every run; a developer's run explores new ones.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
BIG_SETTINGS = settings(SETTINGS, max_examples=2)


def both_sizes(check: Callable, max_examples: int = 60) -> tuple[Callable, Callable]:
    """The two hypothesis tests of check(db, data, big): hostile arrays (max_examples examples) and
    100,000-element ones (BIG_SETTINGS). For check_fetch_jobs they are named test_fetch_jobs and
    test_fetch_jobs_big_arrays: assign them to those names in the test module."""
    name = "test_" + check.__name__.removeprefix("check_")

    def hostile(db, data):
        check(db, data, big=False)

    def big_arrays(db, data):
        check(db, data, big=True)

    # Hypothesis keys its example database on the test's name: give each its own.
    hostile.__name__ = hostile.__qualname__ = name
    big_arrays.__name__ = big_arrays.__qualname__ = name + "_big_arrays"
    return (
        settings(SETTINGS, max_examples=max_examples)(given(data=st.data())(hostile)),
        BIG_SETTINGS(given(data=st.data())(big_arrays)),
    )


# -- values --


_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
NASTY = [
    "",
    "'",
    '"',
    "\\",
    "''",
    "\\'",
    "'; DROP TABLE graphile_worker._private_jobs; --",
    "%s %I %L",
    "\t\n\r\x01\x07\x1b\x1f\x7f",
    "é",
    "日本語キュー",
    "🙂👍🏽",
    "\u202e\u200b",
    "{a,b}",
    "NULL",
    "a" * 128,
    "b" * 129,
    "c" * 512,
    "d" * 513,
    "w" * 256,
    "w" * 257,
    "x" * 10_000,
]
hostile_text = st.one_of(st.text(_chars, max_size=12), st.sampled_from(NASTY))
maybe_text = st.one_of(hostile_text, st.none())


def ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Integers around and far beyond a range: the edges, just outside, and beyond bigint."""
    valid = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]))
    return st.one_of(
        valid,
        valid,
        valid,
        valid,
        valid,
        st.sampled_from([lo - 1, hi + 1, 0, -1, 1]),
        st.sampled_from([*SMALLINT, *INT, *BIGINT, INT[0] - 1, INT[1] + 1, BIGINT[0] - 1, BIGINT[1] + 1, 10**30]),
        st.integers(-(2**70), 2**70),
    )


maybe_int = lambda lo, hi: st.one_of(ints(lo, hi), st.none())  # noqa: E731
maybe_ts = st.one_of(
    st.none(),
    st.sampled_from(TIMESTAMPS),
    st.sampled_from(TIMESTAMPS),
    st.sampled_from(TIMESTAMPS),
    st.sampled_from(OUT_OF_RANGE_TS + GARBAGE_TS),
)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(_chars, max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(_chars, max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
payloads = st.one_of(
    st.none(),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.lists(json_values, max_size=3).map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.sampled_from(["", "{", "not json", "{'a': 1}", "[1,]"]),
)


# -- queue states and the arguments drawn from them --


@st.composite
def states(draw):
    tasks = draw(st.lists(hostile_text.filter(lambda s: len(s) <= 128), min_size=1, max_size=4, unique=True))
    queues = draw(st.lists(hostile_text.filter(lambda s: len(s) <= 128), max_size=3, unique=True))
    workers = draw(st.lists(hostile_text.filter(bool), min_size=1, max_size=3, unique=True))
    lock_ages = st.sampled_from(["past", "old", "inf", "-inf"])
    queue_locks = [
        draw(st.one_of(st.none(), st.tuples(st.sampled_from(workers), lock_ages, st.booleans()))) for _ in queues
    ]
    jobs = []
    keys_used = set()
    for _ in range(draw(st.integers(0, 8))):
        max_attempts = draw(st.sampled_from([1, 2, 25, 32767]))
        key = draw(st.one_of(st.none(), hostile_text.filter(lambda s: 0 < len(s) <= 512)))
        if key in keys_used:
            key = None
        keys_used.add(key)
        jobs.append(
            {
                "task": draw(st.integers(0, len(tasks) - 1)),
                "queue": draw(st.one_of(st.none(), st.integers(0, len(queues) - 1))) if queues else None,
                "priority": draw(st.sampled_from([0, 0, 1, -5, *SMALLINT])),
                "run_at": draw(st.sampled_from(["past", "past", "future", "inf", "-inf"])),
                "attempts": draw(st.sampled_from([0, 0, 1, max_attempts - 1, max_attempts])),
                "max_attempts": max_attempts,
                "key": key,
                "flags": draw(st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "'q", "é"]), max_size=2))),
                "lock": draw(st.one_of(st.none(), st.none(), st.tuples(st.sampled_from(workers), lock_ages))),
                "payload": draw(json_values.map(lambda v: json.dumps(v, ensure_ascii=False))),
                "last_error": draw(maybe_text),
            }
        )
    return {"tasks": tasks, "queues": queues, "queue_locks": queue_locks, "workers": workers, "jobs": jobs}


def spec_strategy():
    return st.fixed_dictionaries(
        {
            "identifier": st.one_of(hostile_text, hostile_text, hostile_text, st.none()),
            "payload_text": payloads,
            "queue_name": st.one_of(st.none(), hostile_text),
            "run_at_text": maybe_ts,
            "max_attempts": st.one_of(st.none(), st.none(), ints(*SMALLINT)),
            "job_key": st.one_of(st.none(), hostile_text),
            "priority": st.one_of(st.none(), st.none(), ints(*SMALLINT)),
            "flags": st.one_of(st.none(), st.lists(st.one_of(st.none(), hostile_text), max_size=3)),
        }
    )


def spec_with_existing(data, state, spec):
    """Often reuse a name or key of the state, so that replacing and sharing are exercised."""
    if state["tasks"] and data.draw(st.booleans()):
        spec["identifier"] = data.draw(st.sampled_from(sorted(state["tasks"].values())))
    if state["queues"] and data.draw(st.booleans()):
        spec["queue_name"] = data.draw(st.sampled_from(sorted(q["name"] for q in state["queues"].values())))
    keys = sorted(j["key"] for j in state["jobs"].values() if j["key"] is not None)
    if keys and data.draw(st.booleans()):
        spec["job_key"] = data.draw(st.sampled_from(keys))
    return spec


def id_arrays(data, state, big: bool = False):
    existing = sorted(state["jobs"])
    one = st.one_of(
        st.sampled_from(existing) if existing else st.none(),
        st.none(),
        ints(*BIGINT),
        st.sampled_from([0, -1, BIGINT[1], BIGINT[0]]),
    )
    if big:
        kind = data.draw(st.sampled_from(["range", "nulls", "overflow"]))
        base = list(range(-BIG // 2, BIG // 2))
        if kind == "nulls":
            base[::7] = [None] * len(base[::7])
        if kind == "overflow":
            base[-1] = BIGINT[1] + 1
        return base + existing
    return data.draw(st.one_of(st.none(), st.lists(one, max_size=6)))


def state_workers(state) -> set:
    return {j["locked_by"] for j in state["jobs"].values() if j["locked_by"]} | {
        q["locked_by"] for q in state["queues"].values() if q["locked_by"]
    }


def worker_arrays(data, state, big: bool = False):
    if big:
        return [f"w{i}" if i % 5 else None for i in range(BIG)] + list(state_workers(state))
    one = st.one_of(st.none(), hostile_text, st.sampled_from(sorted(state_workers(state)) or [""]))
    return data.draw(st.one_of(st.none(), st.lists(one, max_size=5)))


def pick_worker(data, state):
    return data.draw(st.one_of(st.sampled_from(sorted(state_workers(state)) or ["w"]), maybe_text))


# -- the CLI --


PASSWORD = st.text(string.ascii_letters + string.digits + "._~-", min_size=6, max_size=16).map(lambda s: "Pw" + s)
HOSTS = ["127.0.0.1", "localhost", "/nonexistent-socket-dir"]


@st.composite
def dsns(draw):
    password = draw(PASSWORD)
    port = draw(st.sampled_from(["1", "54336", "99999", "-5", "abc", ""]))
    host = draw(st.sampled_from(HOSTS))
    db = draw(st.sampled_from(["gw_no_such_db", "", "x%20y", "é'\"\\"]))
    user = draw(st.sampled_from(["postgres", "nobody", "u'q", ""]))
    form = draw(st.sampled_from(["uri", "keywords", "garbled", "noise"]))
    if form == "uri":
        dsn = f"postgresql://{user}:{password}@{host if host[0] != '/' else ''}:{port}/{db}"
    else:
        dsn = f"host={host} port={port or 1} dbname='{db}' user=nobody password={password} connect_timeout=2"
    if form == "garbled":
        cut = draw(st.integers(0, len(dsn)))
        dsn = dsn[:cut] + draw(st.text(_chars, max_size=5)) + dsn[cut:]
    if form == "noise":
        dsn = draw(st.text(_chars, max_size=30)) + f" password={password}"
    return dsn, password


COMMANDS = ["migrate", "status", "rollback", "cleanup", "cleanup-batched", "grant", "revoke", "verify", "uninstall"]
OPTIONS = ["--to", "--batch-size", "--tasks", "--enqueue", "--worker", "--admin", "--yes", "--help", "--database", "-h"]
TOKENS = st.one_of(
    st.sampled_from(COMMANDS),
    st.sampled_from(OPTIONS),
    st.sampled_from(["0", "-1", "99999999999999999999", "GC_JOB_QUEUES", "DELETE_PERMAFAILED_JOBS,BOGUS", "role'x"]),
    st.text(_chars, max_size=10),
)
