// The panels beside the chart: price, indicator values, recommendation, signal list, daily summaries.
import { $, el, setText } from "./dom.js";
import { fmt, fmtTime } from "./format.js";
import { drawMarkers } from "./markers.js";
import { state } from "./state.js";
import { ofStrategy } from "./strategies.js";

export function showTick(tick) {
  if (!tick) return;
  setText("price", fmt(tick.price));
  setText("price-time", fmtTime(tick.ts_event));
}
export function showIndicators(snapshot) {
  const body = $("indicators");
  body.replaceChildren();
  setText("ind-timeframe", snapshot ? "(" + snapshot.timeframe + ")" : "");
  if (!snapshot) return;
  for (const [name, value] of Object.entries(snapshot.values).sort()) {
    const row = el("tr");
    row.append(el("td", "", name), el("td", "", fmt(value)));
    body.append(row);
  }
}

export function showRecommendation(rec) {
  state.recommendation = rec;
  const side = rec.side;
  const box = $("rec-side");
  box.textContent = side;
  box.className = "rec rec-" + side.toLowerCase();
  const src = rec.set_by;
  setText("rec-state", rec.state);
  setText("rec-rule", src ? src.rule : "–");
  setText("rec-timeframe", src ? src.timeframe : "–");
  setText("rec-price", src ? fmt(src.price) : "–");
  setText("rec-time", src ? fmtTime(src.ts_event) : "–");
  setText("rec-expires", src ? fmtTime(src.expires_at) : "–");
}
// A recommendation decays to HOLD at expires_at even when no new event arrives.
setInterval(() => {
  const rec = state.recommendation;
  if (rec && rec.state === "active" && rec.set_by && Date.parse(rec.set_by.expires_at) <= Date.now()) {
    showRecommendation(recommendationFromSource(rec.set_by));
  }
}, 5000);
export function recommendationFromSource(source) {
  const active = Date.parse(source.expires_at) > Date.now();
  return { side: active ? source.side : "HOLD", state: active ? "active" : "decayed", set_by: source };
}

function signalItem(signal, fresh) {
  const item = el("li", fresh ? "fresh" : "");
  item.dataset.id = signal.signal_id;
  item.append(el("span", signal.side === "BUY" ? "side-buy" : "side-sell", signal.side),
              el("span", "", signal.rule), el("span", "", fmt(signal.price)),
              el("span", "meta", signal.timeframe + " · " + fmtTime(signal.ts_event)));
  return item;
}
export function showSignals() {
  $("signals").replaceChildren(...state.signals.filter(ofStrategy).slice(0, 50).map((s) => signalItem(s, false)));
}
export function addSignal(signal) {
  if (!ofStrategy(signal) || state.signals.some((s) => s.signal_id === signal.signal_id)) return;
  state.signals.unshift(signal);
  state.signals.sort((a, b) => Date.parse(b.ts_event) - Date.parse(a.ts_event));
  const list = $("signals");
  list.prepend(signalItem(signal, true));
  while (list.children.length > 50) list.lastElementChild.remove();
  drawMarkers();
}

function dailyRow(day) {
  const row = el("tr");
  row.dataset.date = day.date;
  for (const value of [day.date, day.open, day.high, day.low, day.close, day.mean_price, day.vwap, day.volume,
                       day.tick_count, day.buy_count, day.sell_count, day.final ? "yes" : "no"]) {
    row.append(el("td", "", typeof value === "number" && Number.isInteger(value) && value < 1e6 ? String(value) : fmt(value)));
  }
  return row;
}
export function showDaily(days) {
  $("daily").replaceChildren(...days.slice().reverse().map(dailyRow));
}
export function upsertDaily(day) {
  const body = $("daily");
  const existing = Array.from(body.children).find((row) => row.dataset.date === day.date);
  if (existing) existing.replaceWith(dailyRow(day));
  else body.prepend(dailyRow(day));
}
