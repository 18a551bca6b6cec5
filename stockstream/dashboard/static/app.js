// stockstream dashboard: reads the views API, then follows /live (Server-Sent Events).
// Every value from the system is rendered with textContent (never innerHTML), and the page
// runs under a strict Content-Security-Policy (no inline script/style, only our own origin).
// This module loads the views and wires the selectors; the parts live in js/ (one concern each).
import { buildChart, drawHistory } from "./js/chart.js";
import { $, fillSelect, setText } from "./js/dom.js";
import { fmtPrice, priceDecimals } from "./js/format.js";
import { connectLive } from "./js/live.js";
import { drawMarkers, signalsBetween } from "./js/markers.js";
import { showDaily, showIndicators, showRecommendation, showSignals, showTick } from "./js/panels.js";
import { choose, hashParts, loadInstruments, loadRuns, showSelection, venuesOf, writeHash } from "./js/selectors.js";
import { ensureSession, getJSON } from "./js/session.js";
import { HISTORY, enc, instrumentPath, state, withRun } from "./js/state.js";
import { fillStrategies, scorecardsPath, showScorecards } from "./js/strategies.js";
import { showError, toast } from "./js/toasts.js";

// ---- data loading --------------------------------------------------------------------------
// The instrument's price level (its decimals follow from it): the latest tick, else the newest snapshot or bar.
function priceLevel(latest, indicators, candles) {
  if (latest.tick) return latest.tick.price;
  if (indicators.latest) return indicators.latest.price;
  if (candles.candles.length) return candles.candles[candles.candles.length - 1].close;
  return indicators.history.length ? indicators.history[indicators.history.length - 1].price : null;
}
// The time of the oldest loaded bar (ISO): the start of the range markers are loaded for.
function firstLoaded(history, candles) {
  const first = state.timeframe === "tick" ? history[0] : candles[0];
  return first ? (state.timeframe === "tick" ? first.ts_event : first.ts_open) : null;
}

async function loadAll() {
  const token = ++state.loadToken;
  const base = instrumentPath();
  const tf = enc(state.timeframe);
  const strategy = state.strategy ? `?strategy=${enc(state.strategy)}` : "";
  const [latest, rec, indicators, signals, daily, candles, scorecards] = await Promise.all([
    getJSON(withRun(`${base}/latest`)),
    getJSON(withRun(`${base}/recommendation${strategy}`)),
    getJSON(withRun(`${base}/indicators?timeframe=${tf}&limit=${HISTORY}`)),
    getJSON(withRun(`${base}/signals?limit=200`)),
    getJSON(withRun(`${base}/daily`)),
    state.timeframe === "tick" ? Promise.resolve({ candles: [] })
      : getJSON(withRun(`${base}/candles?timeframe=${tf}&limit=${HISTORY}`)),
    getJSON(scorecardsPath()),
  ]);
  if (token !== state.loadToken) return; // a newer selection won
  // Markers for the loaded range only (older signals come with the older pages).
  const from = firstLoaded(indicators.history, candles.candles);
  const marked = from ? await signalsBetween(from, null) : [];
  if (token !== state.loadToken) return;
  state.decimals = priceDecimals(priceLevel(latest, indicators, candles));
  buildChart();
  showTick(latest.tick);
  if (!latest.tick && indicators.latest) setText("price", fmtPrice(indicators.latest.price, state.decimals));
  showIndicators(indicators.latest || latest.indicators[state.timeframe] || null);
  showRecommendation(rec);
  state.signals = signals.signals;
  state.markerSignals = marked;
  state.scorecards = scorecards.scorecards;
  fillStrategies();
  showSignals();
  showScorecards();
  showDaily(daily.days);
  state.history = indicators.history.slice();
  state.candles = candles.candles.slice();
  state.older = { indicators: indicators.next_cursor, candles: candles.next_cursor || null };
  state.olderPages = 0; state.lastFrom = null; state.userMoved = false;
  document.body.dataset.olderPages = "0";
  drawHistory(state.history, state.candles);
  drawMarkers();
  state.chart.timeScale().fitContent();
  state.chart.timeScale().subscribeVisibleLogicalRangeChange(onVisibleRange);
  document.body.dataset.loaded = state.symbol + "/" + state.timeframe;
  document.body.dataset.run = state.run;
  document.body.dataset.strategy = state.strategy;
  document.body.dataset.instrument = state.symbol + "@" + state.venue;
}

// Scrolling left to the first bars loads the page before them (once at a time, while there is one).
// Only the user's scrolling: the chart's own layout (an axis growing to fit the labels) moves the range too.
function onVisibleRange(range) {
  if (!range) return;
  const movedLeft = state.userMoved && state.lastFrom !== null && range.from < state.lastFrom;
  state.lastFrom = range.from;
  if (movedLeft && range.from < 10) loadOlder().catch(showError);
}
async function loadOlder() {
  const wantCandles = state.timeframe !== "tick";
  if (state.loadingOlder || !(state.older.indicators || (wantCandles && state.older.candles))) return;
  state.loadingOlder = true;
  const token = state.loadToken;
  try {
    const base = instrumentPath();
    const tf = enc(state.timeframe);
    const [indicators, candles] = await Promise.all([
      state.older.indicators
        ? getJSON(withRun(`${base}/indicators?timeframe=${tf}&limit=${HISTORY}&cursor=${enc(state.older.indicators)}`))
        : Promise.resolve({ history: [], next_cursor: null }),
      wantCandles && state.older.candles
        ? getJSON(withRun(`${base}/candles?timeframe=${tf}&limit=${HISTORY}&cursor=${enc(state.older.candles)}`))
        : Promise.resolve({ candles: [], next_cursor: null }),
    ]);
    if (token !== state.loadToken) return; // another instrument or timeframe meanwhile
    const until = firstLoaded(state.history, state.candles);
    const from = firstLoaded(indicators.history, candles.candles);
    const marked = from && until ? await signalsBetween(from, until) : [];
    if (token !== state.loadToken) return;
    const before = Number(document.body.dataset.historyPoints || 0);
    const visible = state.chart.timeScale().getVisibleLogicalRange();
    state.history = indicators.history.concat(state.history);
    state.candles = candles.candles.concat(state.candles);
    state.markerSignals = marked.concat(state.markerSignals);
    state.older = { indicators: indicators.next_cursor, candles: candles.next_cursor };
    drawHistory(state.history, state.candles);
    drawMarkers();
    const added = Number(document.body.dataset.historyPoints || 0) - before;
    if (visible && added > 0) {  // keep the bars the user looks at where they were
      state.lastFrom = visible.from + added;
      state.chart.timeScale().setVisibleLogicalRange({ from: visible.from + added, to: visible.to + added });
    }
    state.olderPages += 1;
    document.body.dataset.olderPages = String(state.olderPages);
  } finally {
    state.loadingOlder = false;
  }
}

function followLive() {
  connectLive(() => loadAll().catch(showError));
}

async function start() {
  if (!window.LightweightCharts) { showError(new Error("chart library did not load")); return; }
  await ensureSession();
  const wanted = hashParts();
  state.run = wanted.run;
  state.strategy = wanted.strategy;
  await loadRuns();
  const symbols = await loadInstruments();
  choose(symbols, state.timeframes, wanted);
  showSelection(symbols);
  const changed = (event) => {
    state.symbol = $("symbol").value;
    if (event && event.target === $("symbol")) {
      // Another symbol: keep the venue when it quotes the symbol too, else its first venue.
      const venues = venuesOf(state.symbol);
      fillSelect($("venue"), venues, venues.includes(state.venue) ? state.venue : venues[0]);
    }
    state.venue = $("venue").value;
    state.timeframe = $("timeframe").value;
    writeHash();
    state.wasConnected = false;
    loadAll().then(followLive).catch(showError);
  };
  // Another run: its instruments (the same symbol, venue and timeframe when it has them), then its views.
  $("run").addEventListener("change", async () => {
    state.run = $("run").value;
    state.wasConnected = false;
    try {
      const symbols = await loadInstruments();
      choose(symbols, state.timeframes, { sym: state.symbol, venue: state.venue, tf: state.timeframe });
      showSelection(symbols);
      writeHash();
      if (!state.symbol) { document.body.dataset.run = state.run; followLive(); return; }  // a run with no views
      await loadAll();
      followLive();
    } catch (error) { showError(error); }
  });
  $("strategy").addEventListener("change", () => {
    state.strategy = $("strategy").value;
    writeHash();
    loadAll().catch(showError);  // the recommendation of that strategy, its signals, markers and scorecards
  });
  for (const kind of ["pointerdown", "wheel", "touchstart"]) {
    $("chart").addEventListener(kind, () => { state.userMoved = true; }, { passive: true });
  }
  $("symbol").addEventListener("change", changed);
  $("venue").addEventListener("change", changed);
  $("timeframe").addEventListener("change", changed);
  $("notify-toggle").addEventListener("click", async () => {
    if (!("Notification" in window)) { toast("Notifications", "This browser has no Notification API.", null); return; }
    const permission = await Notification.requestPermission();
    setText("notify-toggle", permission === "granted" ? "Notifications on" : "Notifications blocked");
  });
  await loadAll();
  followLive();
}

start().catch(showError);
