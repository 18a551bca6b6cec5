// The chart (Lightweight Charts): price (line for ticks, candles otherwise) with its overlays, RSI and
// MACD panes; history is drawn with setData, live points with update.
import { $ } from "./dom.js";
import { DIFFERENCE_EXTRA_DECIMALS, chartPriceFormat } from "./format.js";
import { COLORS, state } from "./state.js";

export function seconds(iso) { return Math.floor(Date.parse(iso) / 1000); }
function timeframeSeconds(tf) {
  const match = /^(\d+)([smhd])$/.exec(tf);
  if (!match) return 0;
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
}
// Candle-timeframe snapshots carry the window's close time; a bar is drawn at its open time.
export function barTime(iso, tf) {
  const length = timeframeSeconds(tf);
  const t = Date.parse(iso) / 1000;
  return length ? Math.ceil(t / length) * length - length : Math.floor(t);
}
// Where an event of the selected timeframe is drawn on the time scale.
export function chartTime(iso) {
  return state.timeframe === "tick" ? seconds(iso) : barTime(iso, state.timeframe);
}

export function buildChart() {
  const LWC = window.LightweightCharts;
  if (state.chart) { state.chart.remove(); }
  state.series = {}; state.lastTime = {}; state.markers = null;
  const chart = LWC.createChart($("chart"), {
    autoSize: true,
    layout: { background: { type: "solid", color: "#161c24" }, textColor: COLORS.text, attributionLogo: false,
              panes: { separatorColor: "#253040", enableResize: true } },
    grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
    timeScale: { timeVisible: true, secondsVisible: state.timeframe === "tick", borderColor: "#253040" },
    rightPriceScale: { borderColor: "#253040" },
    crosshair: { mode: 0 },
  });
  state.chart = chart;
  // The price axis and every price-unit line use the instrument's decimals (0.12104, not 0.12).
  const priceFormat = chartPriceFormat(state.decimals);
  const macdFormat = chartPriceFormat(state.decimals + DIFFERENCE_EXTRA_DECIMALS);
  if (state.timeframe === "tick") {
    state.series.price = chart.addSeries(LWC.LineSeries, { color: COLORS.price, lineWidth: 2, title: "price", priceFormat }, 0);
  } else {
    state.series.price = chart.addSeries(LWC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up,
      wickDownColor: COLORS.down, priceFormat }, 0);
  }
  state.markers = LWC.createSeriesMarkers(state.series.price, []);
  const rsi = chart.addSeries(LWC.LineSeries, { color: COLORS.rsi, lineWidth: 1, title: "RSI" }, 1);
  rsi.createPriceLine({ price: 70, color: COLORS.down, lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "70" });
  rsi.createPriceLine({ price: 30, color: COLORS.up, lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "30" });
  state.series.rsi = rsi;
  state.series.macd_hist = chart.addSeries(LWC.HistogramSeries, { color: COLORS.macd, title: "hist", priceFormat: macdFormat }, 2);
  state.series.macd = chart.addSeries(LWC.LineSeries, { color: COLORS.macd, lineWidth: 1, title: "MACD", priceFormat: macdFormat }, 2);
  state.series.macd_signal = chart.addSeries(LWC.LineSeries, { color: COLORS.macdSignal, lineWidth: 1, title: "signal",
                                                               priceFormat: macdFormat }, 2);
  const panes = chart.panes();
  panes[0].setStretchFactor(3); panes[1].setStretchFactor(1); panes[2].setStretchFactor(1);
}

// Which line an indicator goes to: overlays on the price pane, RSI and MACD in their panes.
function lineFor(name) {
  if (state.series[name]) return state.series[name];
  let options = null;
  let pane = 0;
  const family = /^(sma|ema)_\d+$/.exec(name);
  if (family) {
    const palette = COLORS[family[1]];
    const count = Object.keys(state.series).filter((key) => key.startsWith(family[1] + "_")).length;
    options = { color: palette[count % palette.length], lineWidth: 1, title: name.toUpperCase() };
  } else if (name === "bb_upper" || name === "bb_lower") options = { color: COLORS.bb, lineWidth: 1, lineStyle: 2, title: "" };
  else if (name === "bb_middle") options = { color: COLORS.bb, lineWidth: 1, title: "BB" };
  else if (name === "vwap") options = { color: COLORS.vwap, lineWidth: 1, lineStyle: 1, title: "VWAP" };
  else if (/^rsi_\d+$/.test(name)) return state.series.rsi;
  if (!options) return null;
  options.priceLineVisible = false; options.lastValueVisible = false;
  options.priceFormat = chartPriceFormat(state.decimals);  // overlays are in the price's unit
  state.series[name] = state.chart.addSeries(window.LightweightCharts.LineSeries, options, pane);
  return state.series[name];
}
function seriesFor(name) {
  return name === "macd_hist" || name === "macd" || name === "macd_signal" ? state.series[name] : lineFor(name);
}

// Lightweight Charts wants strictly increasing times; keep the last value of each second.
function dedupe(points) {
  const out = [];
  for (const point of points) {
    if (out.length && out[out.length - 1].time === point.time) out[out.length - 1] = point;
    else if (!out.length || out[out.length - 1].time < point.time) out.push(point);
  }
  return out;
}
function setSeries(name, series, points) {
  const clean = dedupe(points);
  series.setData(clean);
  if (clean.length) state.lastTime[name] = clean[clean.length - 1].time;
  if (name === "price") document.body.dataset.historyPoints = String(clean.length);
}
export function updateSeries(name, series, point) {
  const last = state.lastTime[name];
  if (last !== undefined && point.time < last) return; // older than what is drawn: ignore
  series.update(point);
  state.lastTime[name] = point.time;
  if (name === "price" && state.firstTime === null) state.firstTime = point.time;  // no history: markers from here
}
function snapshotPoints(snapshot) {
  const time = chartTime(snapshot.ts_event);
  const points = {};
  for (const [name, value] of Object.entries(snapshot.values)) {
    if (value === null || value === undefined) continue;
    if (name === "macd_hist") points.macd_hist = { time, value, color: value >= 0 ? COLORS.up : COLORS.down };
    else points[name] = { time, value };
  }
  if (state.timeframe === "tick") points.__price = { time, value: snapshot.price };
  return points;
}
export function drawHistory(history, candles) {
  const byName = {};
  for (const snapshot of history) {
    for (const [name, point] of Object.entries(snapshotPoints(snapshot))) (byName[name] = byName[name] || []).push(point);
  }
  if (state.timeframe === "tick") setSeries("price", state.series.price, byName.__price || []);
  else setSeries("price", state.series.price, candles.map((c) => ({
    time: seconds(c.ts_open), open: c.open, high: c.high, low: c.low, close: c.close })));
  for (const [name, points] of Object.entries(byName)) {
    if (name === "__price") continue;
    const series = seriesFor(name);
    if (series) setSeries(name, series, points);
  }
  const empty = !(state.timeframe === "tick" ? (byName.__price || []).length : candles.length);
  $("chart-empty").classList.toggle("hidden", !empty);
  const first = state.timeframe === "tick" ? (byName.__price || [])[0] : candles[0];
  state.firstTime = first ? (first.time !== undefined ? first.time : seconds(first.ts_open)) : null;
  describeAxes(byName, candles);
}
// The labels the price and MACD axes give the last values, as the chart writes them (its series'
// own formatters): on the page for people checking the precision, and for the browser tests.
function describeAxes(byName, candles) {
  const last = (points) => (points && points.length ? points[points.length - 1].value : null);
  const price = state.timeframe === "tick" ? last(byName.__price) : (candles.length ? candles[candles.length - 1].close : null);
  const macd = last(byName.macd);
  const body = document.body.dataset;
  body.priceDecimals = String(state.decimals);
  body.priceLabel = price === null ? "" : state.series.price.priceFormatter().format(price);
  body.macdLabel = macd === null ? "" : state.series.macd.priceFormatter().format(macd);
}
export function applySnapshot(snapshot) {
  for (const [name, point] of Object.entries(snapshotPoints(snapshot))) {
    if (name === "__price") { updateSeries("price", state.series.price, point); continue; }
    const series = seriesFor(name);
    if (series) updateSeries(name, series, point);
  }
  $("chart-empty").classList.add("hidden");
}
