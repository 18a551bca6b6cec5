// The live stream (/live, Server-Sent Events) of the selected instrument; a run's views are not live.
import { applySnapshot, seconds, updateSeries } from "./chart.js";
import { setConnection } from "./dom.js";
import { addSignal, recommendationFromSource, showIndicators, showRecommendation, showTick, upsertDaily } from "./panels.js";
import { enc, state } from "./state.js";
import { notify } from "./toasts.js";

// onReconnect: called when the stream is back after a break (the caller loads the views again to fill the gap).
export function connectLive(onReconnect) {
  if (state.source) state.source.close();
  state.source = null;
  if (state.run !== "live") {  // /live pushes live updates only: a run's views are a fixed result
    setConnection("run", "run " + state.run + " (not live)");
    return;
  }
  const source = new EventSource(`/live?instrument=${enc(state.symbol + "@" + state.venue)}`);
  state.source = source;
  const mine = (data) => data && data.symbol === state.symbol && data.venue === state.venue;
  const on = (name, handler) => source.addEventListener(name, (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch (_) { return; }
    handler(data);
  });
  on("ready", (data) => {
    setConnection(data.redis ? "ok" : "wait", data.redis ? "live" : "live (views store down)");
    if (state.wasConnected) onReconnect(); // fill the gap after a reconnect
    state.wasConnected = true;
  });
  on("status", (data) => setConnection(data.redis ? "ok" : "wait", data.redis ? "live" : "live (views store down)"));
  on("tick", (tick) => {
    if (!mine(tick)) return;
    showTick(tick);
    if (state.timeframe === "tick") updateSeries("price", state.series.price, { time: seconds(tick.ts_event), value: tick.price });
  });
  on("indicators", (snapshot) => {
    if (!mine(snapshot) || snapshot.timeframe !== state.timeframe) return;
    state.history.push(snapshot); // kept for a redraw when older pages arrive
    applySnapshot(snapshot);
    showIndicators(snapshot);
  });
  on("candle", (candle) => {
    if (!mine(candle) || candle.timeframe !== state.timeframe) return;
    // Forming candles (final: false) update their window's bar until the closed one arrives; one bar per
    // window in the kept list (a redraw must not see two bars at one time), never a closed bar made forming.
    const index = state.candles.findIndex((c) => c.ts_open === candle.ts_open);
    if (index >= 0) {
      if (state.candles[index].final !== false && candle.final === false) return;
      state.candles[index] = candle;
    } else state.candles.push(candle);
    updateSeries("price", state.series.price, { time: seconds(candle.ts_open), open: candle.open, high: candle.high,
                                                low: candle.low, close: candle.close });
  });
  on("signal", (signal) => { if (mine(signal)) addSignal(signal); });
  // The live recommendation is across strategies: with one selected, only its own signals set it.
  on("recommendation", (source) => {
    if (mine(source) && (!state.strategy || source.rule === state.strategy)) showRecommendation(recommendationFromSource(source));
  });
  on("daily", (day) => { if (mine(day)) upsertDaily(day); });
  on("notification", (body) => notify(body));
  source.onerror = () => setConnection("down", "reconnecting…");
}
