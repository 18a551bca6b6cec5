"""Shared hypothesis profiles and input generators for the fuzz tier (tests/fuzz).

Profiles (``STOCKSTREAM_FUZZ_PROFILE``):

- ``ci`` (default): derandomized, no example database — the same examples on every run and
  machine, so a failure in CI reproduces locally with the same command;
- ``dev``: random, with the local example database (new inputs each run, failures replayed);
- ``deep``: random, ten times the examples (a longer hunt before a release).

Every test takes its example count through :func:`fuzz`, so the tier's run time is set in one
place. Generators produce two kinds of hostile input: *structured but wrong* (the right shape
with wrong types, missing/extra fields, huge/tiny/non-finite numbers, odd unicode, deep
nesting) and *raw garbage* (arbitrary bytes/text).
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                                       HealthCheck.filter_too_much], "print_blob": True}
settings.register_profile("stockstream-ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("stockstream-dev", **_COMMON)
settings.register_profile("stockstream-deep", **_COMMON)
_PROFILE = os.environ.get("STOCKSTREAM_FUZZ_PROFILE", "ci")
_SCALE = 10 if _PROFILE == "deep" else 1


def fuzz(max_examples: int) -> settings:
    """The settings of one fuzz test: the selected profile with ``max_examples`` (×10 for ``deep``)."""
    return settings(settings.get_profile(f"stockstream-{_PROFILE}"), max_examples=max_examples * _SCALE)


# -- scalars ---------------------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from([
    "", " ", "\t", "\n", "\r", "\r\n", "\x00", "\u2028", "\ufeff", "\u200b", "\u202e", "NaN", "nan", "-inf",
    "Infinity", "1e309", "-0", "0", "0x10", "1_000", "١٢٣", "１２３", "½", "∞", "𝟙", "ＢＴＣ-ＵＳＤ", "btc/usd",
    "BTC--USD", "BTC-USD\n", " BTC-USD ", "BTC-USD\x00", "é", "ß", "İ", "ﬃ", "😀", "\U0010ffff", "a" * 300,
    "9" * 400, "1" + "0" * 30, "1e-400", "4.9e-324", "1.7976931348623157e308", "2024-02-30T00:00:00Z",
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59Z", "1970-01-01",
    "2024-03-10T00:00:00", "2024-03-10 12:00:00", "24:00", "true", "null", "{}", "[]", '"', "'", "\\",
    "<script>alert(1)</script>", "%00", "%ff", "../../etc/passwd", "${jndi:ldap://x}", "{{7*7}}",
])
"""Strings that have broken parsers before: separators, non-ASCII digits, look-alike letters,
unicode oddities (BOM, line separators, bidi), boundary numbers and dates, injection shapes."""

TEXT = st.one_of(ODD_TEXT, st.text(max_size=40), st.text(alphabet=string.printable, max_size=20))
HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, 10**400, -1, 0, 1])
NUMBERS = st.one_of(
    st.integers(), HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 1e-12, 1e12, 1e15, 1e300, 1.7976931348623157e308]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON-like value: scalars (NaN/inf included) nested in lists and string-keyed dicts."""
    return st.recursive(SCALARS, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=max_leaves)


def deep_nesting(kind: str, depth: int) -> str:
    """``[[[[…]]]]`` / ``{"a":{"a":…}}`` text nested ``depth`` deep (recursion limits of parsers)."""
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


DEEP_JSON = st.builds(deep_nesting, st.sampled_from(["list", "dict"]), st.sampled_from([50, 1_000, 100_000]))


def dumps(value: object) -> str:
    """JSON text of ``value``, NaN/Infinity kept as the non-standard tokens Python writes."""
    return json.dumps(value, allow_nan=True, default=str)


# -- structured but wrong --------------------------------------------------------------------------------

def mutated(valid: Mapping[str, Any], *, extra_keys: list[str] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` with some fields dropped, some replaced by any JSON value, some keys added.

    Each variation is drawn independently, so the examples range from "valid" to "every field
    wrong"; ``extra_keys`` are likely keys to add (the message's own control keys, say).
    """
    keys = list(valid)
    candidates = keys + (extra_keys or [])

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        result = dict(valid)
        for key in keys:
            choice = draw(st.integers(0, 5))
            if choice == 0:
                result.pop(key, None)
            elif choice == 1:
                result[key] = draw(json_values(4))
            elif choice == 2:
                result[key] = draw(SCALARS)
        for _ in range(draw(st.integers(0, 2))):
            result[draw(st.one_of(st.sampled_from(candidates), TEXT))] = draw(json_values(4))
        return result

    return build()


def frames(valid: list[Mapping[str, Any]], extra_keys: list[str] | None = None) -> st.SearchStrategy[str | bytes]:
    """What a WebSocket may deliver: mutations of valid messages as JSON, deep nesting, raw garbage."""
    structured = st.one_of(*(mutated(message, extra_keys=extra_keys) for message in valid)).map(dumps)
    return st.one_of(
        structured, structured, structured,
        json_values().map(dumps),
        DEEP_JSON,
        st.text(max_size=200),
        st.binary(max_size=200),
        structured.map(lambda text: text.encode("utf-8", "surrogatepass")),
        structured.flatmap(lambda text: st.integers(0, max(0, len(text) - 1)).map(lambda cut: text[:cut])),
    )


# -- raw garbage -----------------------------------------------------------------------------------------

LINE_BREAKS = st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b""])


def file_bytes(line: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A file of lines from ``line`` joined with assorted line breaks (CRLF, bare CR, blank lines)."""
    return st.lists(st.tuples(line, LINE_BREAKS), max_size=12).map(
        lambda parts: b"".join(text + end for text, end in parts))


def mostly_ascii_bytes(max_size: int = 80) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=max_size),
        st.text(alphabet=string.printable.replace("\n", ""), max_size=max_size).map(str.encode),
        st.text(max_size=max_size // 2).map(lambda text: text.encode("utf-8", "surrogatepass")),
    )
