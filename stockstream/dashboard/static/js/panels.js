// The panels beside the chart: price, indicator values, recommendation, signal list, daily summaries.
import { $, el, setText } from "./dom.js";
import { fmt, fmtIndicator, fmtPrice, fmtTime } from "./format.js";
import { addMarker } from "./markers.js";
import { state } from "./state.js";
import { ofStrategy } from "./strategies.js";

export function showTick(tick) {
  if (!tick) return;
  setText("price", fmtPrice(tick.price, state.decimals));
  setText("price-time", fmtTime(tick.ts_event));
}
export function showIndicators(snapshot) {
  const body = $("indicators");
  body.replaceChildren();
  setText("ind-timeframe", snapshot ? "(" + snapshot.timeframe + ")" : "");
  if (!snapshot) return;
  for (const [name, value] of Object.entries(snapshot.values).sort()) {
    const row = el("tr");
    row.append(el("td", "", name), el("td", "", fmtIndicator(name, value, state.decimals)));
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
  setText("rec-price", src ? fmtPrice(src.price, state.decimals) : "–");
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
              el("span", "", signal.rule), el("span", "", fmtPrice(signal.price, state.decimals)),
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
  addMarker(signal);
}

function dailyRow(day) {
  const row = el("tr");
  row.dataset.date = day.date;
  const price = (value) => fmtPrice(value, state.decimals);
  const count = (value) => String(value);
  for (const text of [day.date, price(day.open), price(day.high), price(day.low), price(day.close), price(day.mean_price),
                      price(day.vwap), Number.isInteger(day.volume) && day.volume < 1e6 ? count(day.volume) : fmt(day.volume),
                      count(day.tick_count), count(day.buy_count), count(day.sell_count), day.final ? "yes" : "no"]) {
    row.append(el("td", "", text));
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
