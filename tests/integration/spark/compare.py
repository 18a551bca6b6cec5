"""Compare backfill output (Parquet datasets or decoded events) with reference events, value for value.

Floats must agree to 1e-9 relative (absolute below 1); everything else exactly. Failures list
the first few differences with the record position, so a broken warm-up is easy to locate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from processors.core.timeutil import to_us
from spark_jobs.backfill.rows import indicator_column

TOLERANCE = 1e-9
_ABSENT = object()  # a column a reference event does not show (an indicator still warming up)


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and b is None
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def same_json(left: str | bytes, right: str | bytes) -> bool:
    """Two JSON documents with the same structure, strings and integers, and floats within 1e-9."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, float) or isinstance(b, float):
            return isinstance(a, int | float) and isinstance(b, int | float) and close(float(a), float(b))
        return a == b

    return same(json.loads(left), json.loads(right))


def _null(value: Any) -> Any:
    return None if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else value


def _us(value: Any) -> int | None:
    value = _null(value)
    if value is None or value is pd.NaT:
        return None
    return int(pd.Timestamp(value).value // 1000)


def read_dataset(root: Path | str, kind: str) -> pd.DataFrame:
    frame = pd.read_parquet(Path(root) / kind)
    if len(frame):
        frame["symbol"] = frame["symbol"].astype(str)
    return frame.sort_values(["partition", "offset", "seq"]).reset_index(drop=True)


def _expected_row(kind: str, event: Any) -> dict[str, Any]:
    """The columns a reference event must show in its dataset (floats compared approximately)."""
    if kind == "indicators":
        row = {"timeframe": event.timeframe, "price": event.price, "ts_event": to_us(event.ts_event),
               "ts_init": to_us(event.ts_init)}
        row.update({indicator_column(name): value for name, value in event.values.items()})
    elif kind == "signals":
        row = {"signal_id": event.signal_id, "timeframe": event.timeframe, "rule": event.rule, "side": event.side,
               "price": event.price, "ts_event": to_us(event.ts_event), "strategy": event.strategy,
               "strategy_version": event.strategy_version, "condition": event.condition}
        row.update({indicator_column(name): value for name, value in event.indicators.items()})
    elif kind == "candles":
        row = {name: getattr(event, name) for name in ("timeframe", "open", "high", "low", "close", "volume",
                                                       "trade_count")}
        row.update(ts_open=to_us(event.ts_open), ts_close=to_us(event.ts_close), ts_event=to_us(event.ts_event),
                   ts_init=to_us(event.ts_init))
    elif kind == "daily":
        row = {name: getattr(event, name) for name in ("open", "high", "low", "close", "mean_price", "vwap",
                                                       "volume", "tick_count", "buy_count", "sell_count", "final")}
        row.update(ts_event=to_us(event.ts_event), ts_init=to_us(event.ts_init), day=event.date)
    elif kind == "outcomes":
        row = {name: getattr(event, name) for name in ("outcome_id", "signal_id", "strategy", "strategy_version",
                                                       "timeframe", "side", "horizon", "signal_price", "price",
                                                       "return_gross", "return_net", "fee")}
        row.update(signal_ts=to_us(event.signal_ts), ts_event=to_us(event.ts_event))
    else:
        row = {"reason": event.reason, "source": event.source, "detail": event.detail, "raw": event.raw,
               "ts_init": to_us(event.ts_init)}
    return row


def _timestamp(name: str) -> bool:
    return name.startswith("ts_") or name.endswith("_ts")


def _actual(name: str, raw: Any) -> Any:
    """A dataset value as its reference value is written: a date, µs since the epoch, None for a null."""
    if name == "day":
        return pd.Timestamp(str(raw)).date()
    return _us(raw) if _timestamp(name) else _null(raw)


def _same(name: str, raw: Any, value: Any) -> bool:
    """One value of a dataset row against its reference value (the rule the vectorized check follows)."""
    actual = _actual(name, raw)
    if isinstance(value, float) or (isinstance(actual, float) and value is None):
        return close(actual, value)
    return bool(actual == value)


def _mismatches(name: str, column: pd.Series, values: list[Any]) -> np.ndarray:
    """Where a dataset column differs from the reference values (``_ABSENT``: not compared), vectorized
    for timestamp and numeric columns with the rule of :func:`_same`; value by value otherwise."""
    present = np.fromiter((v is not _ABSENT for v in values), bool, len(values))
    timestamp = _timestamp(name)
    kinds = {type(v) for v in values if v is not _ABSENT and v is not None}
    if timestamp and isinstance(column.dtype, pd.DatetimeTZDtype) and kinds <= {int}:
        null = column.isna().to_numpy()
        actual = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]").astype("int64")
        return present & _differ_exactly(null, actual, values)
    if not timestamp and name != "day" and (pd.api.types.is_numeric_dtype(column.dtype)
                                            or pd.api.types.is_bool_dtype(column.dtype)) and kinds <= {float, int, bool}:
        null = column.isna().to_numpy()
        actual = column.to_numpy(dtype="float64", na_value=np.nan)
        wanted = np.array([np.nan if v is _ABSENT or v is None else float(v) for v in values])
        wanted_none = np.fromiter((v is None for v in values), bool, len(values))
        approximate = np.fromiter((isinstance(v, float) for v in values), bool, len(values))
        with np.errstate(invalid="ignore"):
            near = np.abs(actual - wanted) <= TOLERANCE * np.maximum(1.0, np.maximum(np.abs(actual), np.abs(wanted)))
            equal = actual == wanted
        same = np.where(wanted_none, null, ~null & np.where(approximate, near, equal))
        return present & ~same
    raw = column.tolist()
    return np.fromiter((v is not _ABSENT and not _same(name, a, v) for a, v in zip(raw, values, strict=True)),
                       bool, len(values))


def _differ_exactly(null: np.ndarray, actual: np.ndarray, values: list[Any]) -> np.ndarray:
    wanted_none = np.fromiter((v is None for v in values), bool, len(values))
    wanted = np.fromiter((0 if v is _ABSENT or v is None else v for v in values), np.int64, len(values))
    return np.where(wanted_none, ~null, null | (actual != wanted))


def differences(kind: str, frame: pd.DataFrame, expected: list[tuple[int, int, int, Any]],
                limit: int = 10) -> list[str]:
    """Human-readable differences between a dataset and the reference events (empty when equal).

    Events are paired by (partition, offset, seq); every column a reference event shows is compared
    by the rule of :func:`_same` (vectorized where the column's type allows), and the first
    ``limit`` differences are listed in (partition, offset, seq, column) order.
    """
    problems: list[str] = []
    keys = zip(*(frame[name].astype("int64").tolist() for name in ("partition", "offset", "seq")), strict=True)
    got = {key: position for position, key in enumerate(keys)}  # a repeated key: the last row, as a dict does
    want = {(p, o, s): event for p, o, s, event in expected}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        problems.append(f"{kind}: {len(missing)} events missing, first at {missing[:3]}")
    if extra:
        problems.append(f"{kind}: {len(extra)} unexpected events, first at {extra[:3]}")
    common = sorted(set(want) & set(got))
    if not common:
        return problems[:limit]
    rows = frame.iloc[[got[where] for where in common]].reset_index(drop=True)
    wanted = [_expected_row(kind, want[where]) for where in common]
    names = list(dict.fromkeys(name for row in wanted for name in row))
    bad = np.zeros(len(common), bool)
    for name in names:
        bad |= _mismatches(name, rows["date" if name == "day" else name], [row.get(name, _ABSENT) for row in wanted])
    for index in np.flatnonzero(bad):
        row = rows.iloc[index]
        for name, value in wanted[index].items():
            raw = row["date" if name == "day" else name]
            if not _same(name, raw, value):
                problems.append(f"{kind} at {common[index]}: {name} = {_actual(name, raw)!r}, expected {value!r}")
                if len(problems) >= limit:
                    return problems
    return problems


def ranked(events: list[tuple[int, int, int, Any]]) -> list[tuple[int, int, int, Any]]:
    """Events keyed by (partition, offset, rank among that record's events of this kind).

    The live output topics carry each event's lineage but not its index among all the events
    of its tick; within one kind the order is the emission order, which is enough to pair them.
    """
    counts: dict[tuple[int, int], int] = {}
    out = []
    for partition, offset, _, event in sorted(events, key=lambda item: (item[0], item[1], item[2])):
        rank = counts.get((partition, offset), 0)
        counts[(partition, offset)] = rank + 1
        out.append((partition, offset, rank, event))
    return out


def rank_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A dataset frame with ``seq`` replaced by the rank within (partition, offset), as :func:`ranked`."""
    frame = frame.sort_values(["partition", "offset", "seq"]).reset_index(drop=True)
    frame["seq"] = frame.groupby(["partition", "offset"]).cumcount()
    return frame
