"""The indicator contract on worked examples (StockCharts ChartSchool data from MISSION.md) and by hand."""

from __future__ import annotations

import math

import pytest

from processors.core.indicators import BollingerSpec, IndicatorEngine, IndicatorSpec, MacdSpec

NOTHING = IndicatorSpec(sma=(), ema=(), rsi=(), macd=None, bollinger=None, vwap=False)

RSI_PRICES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826, 45.8931,
    46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521,
    45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314,
]
RSI_EXPECTED = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99, 41.46,
    41.87, 45.46, 37.30, 33.08, 37.77,
]
EMA_PRICES = [
    22.2734, 22.194, 22.0847, 22.1741, 22.184, 22.1344, 22.2337, 22.4323, 22.2436, 22.2933, 22.1542,
    22.3926, 22.3816, 22.6109, 23.3558, 24.0519, 23.753, 23.8324, 23.9516, 23.6338, 23.8225, 23.8722,
    23.6537, 23.187, 23.0976, 23.326, 22.6805, 23.0976, 22.4025, 22.1725,
]


def feed(spec: IndicatorSpec, prices: list[float], volumes: list[float] | None = None,
         days: list[int] | None = None) -> list[dict[str, float | None]]:
    engine = IndicatorEngine(spec)
    state = engine.new_state()
    rows = []
    for i, price in enumerate(prices):
        values = engine.update(state, price, volumes[i] if volumes else 0.0, days[i] if days else 0)
        rows.append(dict(zip(engine.names, values, strict=True)))
    return rows


def test_rsi_14_matches_the_stockcharts_worked_example() -> None:
    rows = feed(IndicatorSpec(sma=(), ema=(), rsi=(14,), macd=None, bollinger=None, vwap=False), RSI_PRICES)
    assert all(row["rsi_14"] is None for row in rows[:14])  # the first value needs 15 prices
    got = [round(row["rsi_14"], 2) for row in rows[14:]]
    assert got == RSI_EXPECTED


def test_ema_10_matches_the_stockcharts_worked_example() -> None:
    rows = feed(IndicatorSpec(sma=(), ema=(10,), rsi=(), macd=None, bollinger=None, vwap=False), EMA_PRICES)
    values = [row["ema_10"] for row in rows]
    assert values[:9] == [None] * 9
    assert values[9] == pytest.approx(22.22475, abs=5e-9)  # the seed: SMA of the first 10
    for index, expected in ((10, 22.21192273), (11, 22.24477314), (12, 22.26965075), (13, 22.33169607),
                            (28, 23.08068473), (29, 22.91556023)):
        assert values[index] == pytest.approx(expected, abs=5e-9), index


def test_rsi_is_50_on_a_flat_market_and_100_or_0_on_one_way_markets() -> None:
    spec = IndicatorSpec(sma=(), ema=(), rsi=(3,), macd=None, bollinger=None, vwap=False)
    assert feed(spec, [5.0] * 6)[-1]["rsi_3"] == 50.0
    assert feed(spec, [1.0, 2.0, 3.0, 4.0, 5.0])[-1]["rsi_3"] == 100.0
    assert feed(spec, [5.0, 4.0, 3.0, 2.0])[-1]["rsi_3"] == 0.0


def test_rsi_wilder_smoothing_by_hand() -> None:
    spec = IndicatorSpec(sma=(), ema=(), rsi=(2,), macd=None, bollinger=None, vwap=False)
    # changes +2, -1 (seed: G = 1, L = 0.5), then +3: G = (1·1 + 3)/2 = 2, L = (0.5·1 + 0)/2 = 0.25
    rows = feed(spec, [10.0, 12.0, 11.0, 14.0])
    assert rows[1]["rsi_2"] is None
    assert rows[2]["rsi_2"] == pytest.approx(100 * 1 / 1.5)
    assert rows[3]["rsi_2"] == pytest.approx(100 * 2 / 2.25)


def test_sma_and_population_bollinger_by_hand() -> None:
    spec = IndicatorSpec(sma=(3,), ema=(), rsi=(), macd=None, bollinger=BollingerSpec(4, 2.0), vwap=False)
    rows = feed(spec, [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert [row["sma_3"] for row in rows[:3]] == [None, None, pytest.approx(10 / 3)]
    assert rows[-1]["sma_3"] == pytest.approx(7.0)
    # last 4 = 5, 5, 7, 9: mean 6.5, population variance (2.25+2.25+0.25+6.25)/4 = 2.75
    sigma = math.sqrt(2.75)
    assert rows[-1]["bb_middle"] == pytest.approx(6.5)
    assert rows[-1]["bb_upper"] == pytest.approx(6.5 + 2 * sigma)
    assert rows[-1]["bb_lower"] == pytest.approx(6.5 - 2 * sigma)
    assert rows[2]["bb_upper"] is None and rows[3]["bb_upper"] is not None


def test_macd_is_the_difference_of_separately_seeded_emas_and_its_signal_is_seeded_by_a_mean() -> None:
    spec = IndicatorSpec(sma=(), ema=(2, 4), rsi=(), macd=MacdSpec(2, 4, 2), bollinger=None, vwap=False)
    prices = [1.0, 2.0, 4.0, 8.0, 16.0, 8.0]
    rows = feed(spec, prices)
    assert rows[2]["macd"] is None and rows[3]["macd"] is not None
    for row in rows[3:]:
        assert row["macd"] == pytest.approx(row["ema_2"] - row["ema_4"])
    macd3, macd4 = rows[3]["macd"], rows[4]["macd"]
    assert rows[3]["macd_signal"] is None
    assert rows[4]["macd_signal"] == pytest.approx((macd3 + macd4) / 2)
    k = 2 / 3
    assert rows[5]["macd_signal"] == pytest.approx(rows[4]["macd_signal"] + k * (rows[5]["macd"] - rows[4]["macd_signal"]))
    assert rows[5]["macd_hist"] == pytest.approx(rows[5]["macd"] - rows[5]["macd_signal"])


def test_ema_seed_is_the_sma_of_the_first_n_prices() -> None:
    rows = feed(IndicatorSpec(sma=(3,), ema=(3,), rsi=(), macd=None, bollinger=None, vwap=False), [3.0, 6.0, 9.0, 12.0])
    assert rows[2]["ema_3"] == rows[2]["sma_3"] == 6.0
    assert rows[3]["ema_3"] == 6.0 + 0.5 * (12.0 - 6.0)


def test_vwap_restarts_at_each_utc_midnight_and_is_undefined_without_volume() -> None:
    spec = IndicatorSpec(sma=(), ema=(), rsi=(), macd=None, bollinger=None, vwap=True)
    rows = feed(spec, [10.0, 20.0, 30.0, 40.0, 50.0], volumes=[1.0, 3.0, 0.0, 0.0, 2.0], days=[0, 0, 0, 1, 1])
    assert rows[0]["vwap"] == 10.0
    assert rows[1]["vwap"] == pytest.approx((10 + 60) / 4)
    assert rows[2]["vwap"] == pytest.approx(17.5)  # no volume: unchanged
    assert rows[3]["vwap"] is None  # new day, no volume yet
    assert rows[4]["vwap"] == 50.0


def test_names_follow_the_spec_and_an_empty_spec_computes_nothing() -> None:
    assert IndicatorEngine(IndicatorSpec()).names == (
        "sma_20", "sma_50", "ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "macd_hist",
        "bb_upper", "bb_middle", "bb_lower", "vwap",
    )
    engine = IndicatorEngine(NOTHING)
    assert engine.update(engine.new_state(), 1.0, 1.0, 0) == []


@pytest.mark.parametrize("bad", [
    lambda: IndicatorSpec(sma=(0,)),
    lambda: IndicatorSpec(ema=(12, 12)),
    lambda: MacdSpec(26, 12, 9),
    lambda: BollingerSpec(20, 0.0),
    lambda: BollingerSpec(0, 2.0),
])
def test_impossible_specs_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        bad()
