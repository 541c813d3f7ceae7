"""Generated cases: the ids the suite sends to the cancel operation.

Schemathesis generates `id` values from the fragment's parameter schema; they are mixed with
shapes that matter for task ids (UUIDs, long values, reserved and percent-encoded characters)
and with known tasks that must refuse a cancel. Generated ids never name an existing task.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote

import schemathesis
from hypothesis import strategies as st

from conformance.spec import Fragment, load_fragment
from conformance.tasks import encode_id

# Long ids stay under 4 KB of URL: servers cap request lines at 8 KB (Tomcat, uvicorn), and a
# 414 for a multi-kilobyte id says nothing about the cancel operation.
MAX_LONG_ID = 2048
RESERVED = ":/?#[]@!$&'()*+,;=%. ~"
PERCENT_LITERALS = ("%", "%2F", "%252F", "%00", "%2e%2e", "%zz", "%u0041", "%E2%82%AC", "..%2F..")


@dataclass(frozen=True)
class Probe:
    """One id to send: `encoded` is the path segment as it goes on the wire."""

    encoded: str
    origin: str
    # Set for ids from the task pool: the status the task is known to have.
    known_status: str | None = None

    @property
    def raw(self) -> str:
        return unquote(self.encoded)


@cache
def _schemathesis_operation(fragment: Fragment) -> Any:
    # The base URL is never used to send: the suite's Target does that.
    config = schemathesis.Config.from_dict({"base-url": "http://127.0.0.1", "generation": {"database": "none"}})
    # The contract's normalised document, not the file: a --spec document may be a whole vendor
    # API (slow to load) whose operation was renamed to the `{id}` template the suite fills.
    schema = schemathesis.openapi.from_dict(fragment.document, config=config)
    return schema[fragment.path_template][fragment.method]


def _from_schemathesis(fragment: Fragment) -> st.SearchStrategy[Probe]:
    def to_probe(case: Any) -> Probe:
        value = str(case.path_parameters["id"])
        # Schemathesis percent-encodes generated values, except dot segments.
        return Probe(encode_id(value) if value in (".", "..") else value, "schemathesis")

    return _schemathesis_operation(fragment).as_strategy().map(to_probe)


def _shaped() -> list[st.SearchStrategy[Probe]]:
    def probe(origin: str) -> Any:
        return lambda raw: Probe(encode_id(raw), origin)

    uuid_like = st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
    )
    # The cap counts encoded bytes: "é" goes on the wire as six.
    long_ids = st.sampled_from([*string.ascii_letters[:6], "-", "é", "0"]).flatmap(
        lambda ch: st.integers(256 // len(encode_id(ch)), MAX_LONG_ID // len(encode_id(ch))).map(lambda n: ch * n)
    )
    return [
        uuid_like.map(probe("uuid-shaped")),
        long_ids.map(probe("long")),
        st.text(alphabet=RESERVED, min_size=1, max_size=16).map(probe("reserved characters")),
        st.sampled_from(PERCENT_LITERALS).map(probe("percent-encoded")),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12).map(
            probe("unicode")
        ),
    ]


def probes(
    known_tasks: Sequence[tuple[str, str]] = (),
    existing_ids: Collection[str] = (),
    fragment: Fragment | None = None,
) -> st.SearchStrategy[Probe]:
    """Ids to cancel: generated ones (never an existing task) mixed with refusable known tasks."""
    fragment = fragment or load_fragment()
    existing = frozenset(existing_ids)
    generated = st.one_of(
        _from_schemathesis(fragment),
        _from_schemathesis(fragment),
        _from_schemathesis(fragment),
        *_shaped(),
    ).filter(lambda p: p.raw not in existing and p.encoded != "")
    if not known_tasks:
        return generated
    pool = st.sampled_from(list(known_tasks)).map(
        lambda pair: Probe(encode_id(pair[1]), f"known {pair[0]} task", known_status=pair[0])
    )
    return st.one_of(generated, generated, generated, pool)
