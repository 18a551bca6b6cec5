// The page's one state object (the selection, the chart, what is loaded) and the fixed settings.

// Points per page of history (?history=N, 10–1000): the first page, then one more each time the user
// scrolls to the left edge (the API's next_cursor: from the Redis views, then the backfill's Parquet history).
export const HISTORY = Math.min(1000, Math.max(10, Number(new URLSearchParams(location.search).get("history")) || 500));

export const COLORS = {
  up: "#26a69a", down: "#ef5350", price: "#d9e1ea", sma: ["#f5a623", "#ffd54f", "#ff8a65"],
  ema: ["#b388ff", "#7e57c2", "#ce93d8"],
  bb: "#5c7080", vwap: "#26c6da", rsi: "#4fc3f7", macd: "#4f8ff7", macdSignal: "#f5a623", grid: "#1e2733", text: "#8391a3",
};

export const state = {
  run: "live", runs: [], strategy: "", scorecards: [], symbol: null, venue: null, instruments: [], timeframe: "tick", timeframes: ["tick"], chart: null, series: {}, markers: null,
  signals: [], lastTime: {}, source: null, wasConnected: false, loadToken: 0, recommendation: null,
  history: [], candles: [], older: {}, loadingOlder: false, olderPages: 0, lastFrom: null, userMoved: false,
  // Decimals of the instrument's prices (from its price level, set on each load: js/format.js).
  decimals: 2,
  // The signals drawn as markers: those of the loaded history's time range only (markers.js).
  markerSignals: [], firstTime: null,  // firstTime: chart time of the first loaded bar (chart.js)
};

export function enc(text) { return encodeURIComponent(text); }

// The views of the selected run (?run=ID, docs/runs.md); live needs no parameter.
export function withRun(path) {
  return state.run === "live" ? path : path + (path.includes("?") ? "&" : "?") + "run=" + enc(state.run);
}

// The instrument's views: the venue's own series of the symbol (BTC-USD@kraken, BTC-USD@index …).
export function instrumentPath() {
  return `/instruments/${enc(state.venue)}/${enc(state.symbol)}`;
}
