// The run, symbol, venue and timeframe selectors, and the selection kept in the URL hash.
import { $, el, fillSelect, setConnection } from "./dom.js";
import { getJSON } from "./session.js";
import { state, withRun } from "./state.js";

export function venuesOf(symbol) {
  return state.instruments.filter((item) => item.symbol === symbol).map((item) => item.venue);
}

export function hashParts() {
  // #SYMBOL|venue|timeframe|run|strategy (older links: #SYMBOL|timeframe, #SYMBOL|venue|timeframe: live)
  const parts = decodeURIComponent(location.hash.slice(1)).split("|");
  const [sym, venue, tf, run, strategy] = parts.length === 2 ? [parts[0], null, parts[1], null, null] : parts;
  return { sym, venue, tf, run: run || "live", strategy: /^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(strategy || "") ? strategy : "" };
}
export function choose(symbols, timeframes, wanted) {
  state.symbol = symbols.includes(wanted.sym) ? wanted.sym : (symbols.includes("BTC-USD") ? "BTC-USD" : symbols[0]);
  const venues = venuesOf(state.symbol);
  state.venue = venues.includes(wanted.venue) ? wanted.venue : venues[0];
  state.timeframe = timeframes.includes(wanted.tf) ? wanted.tf : "tick";
}
export function writeHash() {
  const parts = [state.symbol, state.venue, state.timeframe];
  if (state.run !== "live" || state.strategy) parts.push(state.run);
  if (state.strategy) parts.push(state.strategy);
  history.replaceState(null, "", "#" + encodeURIComponent(parts.join("|")));
}

// The run selector: live, then every run whose views exist (GET /runs); without Kafka, live alone.
export async function loadRuns() {
  let runs = [];
  try { runs = (await getJSON("/runs")).runs.filter((run) => run.views && run.run_id !== "live"); }
  catch (error) { if (error && error.message === "signed out") throw error; }
  state.runs = runs;
  const select = $("run");
  const live = el("option", "", "live");
  live.value = "live";
  select.replaceChildren(live, ...runs.map((run) => {
    const option = el("option", "", run.run_id + " · " + run.kind + " · " + run.state);
    option.value = run.run_id;
    option.title = run.description || "";
    return option;
  }));
  if (state.run !== "live" && !runs.some((run) => run.run_id === state.run)) state.run = "live";
  select.value = state.run;
}
// The selected run's instruments; live waits for its first instrument (a fresh system), a run does not.
export async function loadInstruments() {
  let listing = await getJSON(withRun("/instruments"));
  if (!listing.instruments.length && state.run === "live") {
    setConnection("wait", "waiting for data…");
    await new Promise((resolve) => {
      const timer = setInterval(async () => {
        try { listing = await getJSON("/instruments"); } catch (_) { return; }
        if (listing.instruments.length || state.run !== "live") { clearInterval(timer); resolve(); }
      }, 3000);
    });
  }
  state.timeframes = listing.timeframes;
  state.instruments = listing.instruments;
  return [...new Set(state.instruments.map((item) => item.symbol))];
}
export function showSelection(symbols) {
  fillSelect($("symbol"), symbols, state.symbol);
  fillSelect($("venue"), venuesOf(state.symbol), state.venue);
  fillSelect($("timeframe"), state.timeframes, state.timeframe);
}
