"""``stockstream backtest --report out.html``: one self-contained HTML page of a portfolio backtest.

Called by :mod:`stockstream.commands.backtest` after :func:`spark_jobs.backtest.portfolio.run_portfolio`.
The page holds everything inline (the vendored Lightweight Charts script, the data as JSON, CSS), so
it opens from a file with no network: the metrics beside buy-and-hold (portfolio and per instrument),
the equity curve (strategy vs buy-and-hold) and the drawdown curve, each instrument's price with its
trades marked (entries ▲/▼, exits ●, the reason on hover), the monthly returns table, the trades.
Long series are thinned to at most 5,000 points per curve for drawing (every trade is kept).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spark_jobs.backtest.metrics import drawdown
from spark_jobs.backtest.portfolio import PortfolioResult
from spark_jobs.backtest.simulate import EXIT_NAMES

VENDOR = Path(__file__).resolve().parents[1] / "dashboard" / "static" / "vendor" / "lightweight-charts"
SCRIPT = VENDOR / "lightweight-charts.standalone.production.js"
MAX_POINTS = 5_000
_SHORT = ("x", "SL", "TP", "TS", "end", "bust", "open")  # exit markers, by exit reason (spark_jobs.backtest.simulate)
ROWS = [("total_return", "Total return", "pct"), ("cagr", "CAGR", "pct"), ("sharpe", "Sharpe", "num"),
        ("sortino", "Sortino", "num"), ("calmar", "Calmar", "num"), ("max_drawdown", "Max drawdown", "pct"),
        ("max_drawdown_duration_s", "Max drawdown duration", "duration"), ("profit_factor", "Profit factor", "num"),
        ("win_rate", "Win rate", "pct"), ("expectancy", "Expectancy / trade", "pct"), ("exposure", "Exposure", "pct"),
        ("trades", "Trades", "int"), ("final_equity", "Final equity", "num")]


def _format(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kind == "pct":
        return f"{value * 100:+.2f} %" if kind == "pct" else str(value)
    if kind == "int":
        return f"{int(value):,}"
    if kind == "duration":
        days, rest = divmod(float(value), 86_400)
        return f"{int(days)} d {rest / 3600:.1f} h" if days else f"{rest / 3600:.1f} h"
    return f"{value:,.4g}"


def _thin(times: np.ndarray, values: np.ndarray) -> list[dict[str, float]]:
    """{time (s), value} points, at most MAX_POINTS (every k-th, the last kept); duplicate seconds merged (last wins)."""
    step = max(1, math.ceil(len(times) / MAX_POINTS))
    chosen = np.unique(np.concatenate([np.arange(0, len(times), step), [len(times) - 1]])) if len(times) else []
    points: dict[int, float] = {}
    for index in chosen:
        points[int(times[index] // 1_000_000)] = round(float(values[index]), 10)
    return [{"time": time, "value": value} for time, value in points.items()]


def monthly_returns(times: np.ndarray, equity: np.ndarray, initial: float) -> pd.DataFrame:
    """Return per calendar month (UTC) of an equity curve: year rows × month columns, plus the year."""
    stamps = pd.to_datetime(times, unit="us", utc=True)
    series = pd.Series(equity, index=stamps)
    month_end = series.groupby([stamps.year, stamps.month]).last()
    before = month_end.shift(1)
    before.iloc[0] = initial
    returns = month_end / before - 1.0
    table = returns.unstack(level=1).reindex(columns=range(1, 13))
    year_end = series.groupby(stamps.year).last()
    year_start = year_end.shift(1)
    year_start.iloc[0] = initial
    table["Year"] = (year_end / year_start - 1.0).to_numpy()
    return table


def _metrics_table(result: PortfolioResult) -> str:
    header = "<tr><th></th><th>Portfolio</th><th>Buy &amp; hold</th>" + "".join(
        f"<th>{html.escape(item.symbol)}</th><th>{html.escape(item.symbol)} B&amp;H</th>" for item in result.instruments) + "</tr>"
    rows = []
    for key, label, kind in ROWS:
        cells = [_format(result.metrics.get(key), kind), _format(result.hold_metrics.get(key), kind)]
        for item in result.instruments:
            cells += [_format(item.metrics.get(key), kind), _format(item.hold_metrics.get(key), kind)]
        rows.append(f"<tr><th>{label}</th>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table class='metrics'>{header}{''.join(rows)}</table>"


def _monthly_table(table: pd.DataFrame) -> str:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"]
    out = ["<table class='monthly'><tr><th></th>" + "".join(f"<th>{m}</th>" for m in months) + "</tr>"]
    for year, row in table.iterrows():
        cells = []
        for value in row.to_numpy():
            if value != value:
                cells.append("<td></td>")
            else:
                tone = "up" if value > 0 else ("down" if value < 0 else "")
                cells.append(f"<td class='{tone}'>{value * 100:+.2f} %</td>")
        out.append(f"<tr><th>{year}</th>{''.join(cells)}</tr>")
    return "".join(out) + "</table>"


def _trades_table(result: PortfolioResult, limit: int = 500) -> str:
    rows = []
    for item in result.instruments:
        trades, times = item.simulation.trades, item.bars.times
        for index in range(len(trades["direction"])):
            rows.append((int(times[trades["entry_bar"][index]]), item.symbol,
                         "long" if trades["direction"][index] > 0 else "short",
                         pd.Timestamp(int(times[trades["entry_bar"][index]]), unit="us", tz="UTC").isoformat(),
                         float(trades["entry_price"][index]),
                         pd.Timestamp(int(times[trades["exit_bar"][index]]), unit="us", tz="UTC").isoformat(),
                         float(trades["exit_price"][index]), float(trades["net_return"][index]),
                         EXIT_NAMES[int(trades["exit_reason"][index])]))
    rows.sort()
    body = "".join(
        f"<tr><td>{html.escape(symbol)}</td><td>{side}</td><td>{entry}</td><td>{entry_price:.6g}</td><td>{exit_}</td>"
        f"<td>{exit_price:.6g}</td><td class='{'up' if ret > 0 else 'down'}'>{ret * 100:+.2f} %</td><td>{reason}</td></tr>"
        for _, symbol, side, entry, entry_price, exit_, exit_price, ret, reason in rows[:limit])
    more = f"<p class='note'>{len(rows) - limit:,} more trades in the trades CSV.</p>" if len(rows) > limit else ""
    return ("<table class='trades'><tr><th>symbol</th><th>side</th><th>entry</th><th>price</th><th>exit</th>"
            f"<th>price</th><th>return</th><th>exit reason</th></tr>{body}</table>{more}")


def _chart_data(result: PortfolioResult, initial: float) -> dict[str, Any]:
    falls = drawdown(result.equity)
    hold_falls = drawdown(result.hold_equity)
    instruments = []
    for item in result.instruments:
        trades, times = item.simulation.trades, item.bars.times
        markers = []
        for index in range(len(trades["direction"])):
            long = trades["direction"][index] > 0
            markers.append({"time": int(times[trades["entry_bar"][index]] // 1_000_000),
                            "position": "belowBar" if long else "aboveBar", "color": "#2e7d32" if long else "#c62828",
                            "shape": "arrowUp" if long else "arrowDown", "text": "L" if long else "S"})
            markers.append({"time": int(times[trades["exit_bar"][index]] // 1_000_000), "position": "inBar",
                            "color": "#455a64", "shape": "circle",
                            "text": _SHORT[int(trades["exit_reason"][index])]})
        markers.sort(key=lambda marker: marker["time"])
        instruments.append({"symbol": item.symbol, "price": _thin(times, item.bars.close), "markers": markers})
    return {"equity": _thin(result.times, result.equity / initial),
            "hold": _thin(result.times, result.hold_equity / initial),
            "drawdown": _thin(result.times, -falls * 100), "hold_drawdown": _thin(result.times, -hold_falls * 100),
            "instruments": instruments}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#1d2733;padding:0 16px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}}
.sub{{color:#5b6b7c;margin-bottom:16px}} .chart{{height:320px;margin-bottom:8px}} .small{{height:180px}}
table{{border-collapse:collapse;font-variant-numeric:tabular-nums}} td,th{{padding:4px 10px;text-align:right;border-bottom:1px solid #eef1f4}}
th{{font-weight:600;color:#38495a}} table.metrics th:first-child,table.monthly th:first-child{{text-align:left}}
.up{{color:#1b7a3a}} .down{{color:#b3261e}} .note{{color:#5b6b7c}} .legend span{{margin-right:16px}}
.scroll{{overflow-x:auto}}
</style></head><body>
<h1>{title}</h1><div class="sub">{subtitle}</div>
<h2>Metrics</h2><div class="scroll">{metrics}</div>
<h2>Equity (×initial capital)</h2><div class="legend"><span style="color:#1565c0">■ strategy</span><span style="color:#9e9e9e">■ buy &amp; hold</span></div>
<div id="equity" class="chart"></div>
<h2>Drawdown (%)</h2><div id="drawdown" class="chart small"></div>
<h2>Trades on price</h2><div id="prices"></div>
<h2>Monthly returns (portfolio)</h2><div class="scroll">{monthly}</div>
<h2>Trades</h2><div class="scroll">{trades}</div>
<p class="note">Model: signals fill at the next bar's open; fees and slippage on every fill; stops checked inside each bar
(both stop and take-profit in one bar: the stop). See docs/spark.md, "Backtest model".</p>
<script>{library}</script>
<script id="data" type="application/json">{data}</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const LWC = LightweightCharts;
function chart(element, height) {{
  return LWC.createChart(element, {{height: height, layout: {{background: {{color: "#ffffff"}}, textColor: "#1d2733"}},
    grid: {{vertLines: {{color: "#f1f3f5"}}, horzLines: {{color: "#f1f3f5"}}}}, timeScale: {{timeVisible: true}},
    rightPriceScale: {{borderVisible: false}}}});
}}
const equity = chart(document.getElementById("equity"), 320);
equity.addSeries(LWC.LineSeries, {{color: "#9e9e9e", lineWidth: 1, title: "buy & hold"}}).setData(DATA.hold);
equity.addSeries(LWC.LineSeries, {{color: "#1565c0", lineWidth: 2, title: "strategy"}}).setData(DATA.equity);
equity.timeScale().fitContent();
const drawdown = chart(document.getElementById("drawdown"), 180);
drawdown.addSeries(LWC.LineSeries, {{color: "#bdbdbd", lineWidth: 1, title: "buy & hold"}}).setData(DATA.hold_drawdown);
drawdown.addSeries(LWC.AreaSeries, {{lineColor: "#b3261e", topColor: "rgba(179,38,30,0.05)", bottomColor: "rgba(179,38,30,0.35)",
  lineWidth: 1, title: "strategy", invertFilledArea: true}}).setData(DATA.drawdown);
drawdown.timeScale().fitContent();
const holder = document.getElementById("prices");
for (const instrument of DATA.instruments) {{
  const title = document.createElement("h3");
  title.textContent = instrument.symbol;
  const element = document.createElement("div");
  element.className = "chart";
  element.dataset.symbol = instrument.symbol;
  holder.append(title, element);
  const price = chart(element, 320);
  const series = price.addSeries(LWC.LineSeries, {{color: "#37474f", lineWidth: 1, title: instrument.symbol}});
  series.setData(instrument.price);
  LWC.createSeriesMarkers(series, instrument.markers);
  price.timeScale().fitContent();
}}
document.body.dataset.drawn = "yes";
</script></body></html>
"""


def write_report(path: Path, result: PortfolioResult, initial: float, title: str, subtitle: str) -> None:
    """Write the page (see the module docstring); ``subtitle`` says what was run (strategy, costs, range)."""
    data = json.dumps(_chart_data(result, initial), separators=(",", ":")).replace("</", "<\\/")
    page = PAGE.format(title=html.escape(title), subtitle=html.escape(subtitle), metrics=_metrics_table(result),
                       monthly=_monthly_table(monthly_returns(result.times, result.equity, initial)),
                       trades=_trades_table(result), library=SCRIPT.read_text(encoding="utf-8"), data=data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
