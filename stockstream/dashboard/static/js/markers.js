// Signal markers on the price series: the selected timeframe's and strategy's signals, for the time range
// of the loaded history only (a marker older than the first bar would be drawn piled at the left edge).
import { chartTime } from "./chart.js";
import { getJSON } from "./session.js";
import { COLORS, enc, instrumentPath, state, withRun } from "./state.js";
import { ofStrategy } from "./strategies.js";

const PAGE = 1000;  // the API's largest page
const MAX_PAGES = 5;  // at most 5,000 markers per range: beyond that the arrows would cover the chart anyway

// The instrument's signals of [from, to) (ISO times; to null: up to now), every timeframe and strategy.
export async function signalsBetween(from, to) {
  const range = `${instrumentPath()}/signals?limit=${PAGE}&from=${enc(from)}` + (to ? `&to=${enc(to)}` : "");
  const found = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const body = await getJSON(withRun(range + (cursor ? `&cursor=${enc(cursor)}` : "")));
    found.push(...body.signals);
    cursor = body.next_cursor;
    if (!cursor || body.signals.length < PAGE) break;  // a short page is the range's last
  }
  return found;
}

// A signal that arrived live: drawn once (it may already be in the loaded range).
export function addMarker(signal) {
  if (!state.markerSignals.some((s) => s.signal_id === signal.signal_id)) state.markerSignals.push(signal);
  drawMarkers();
}

export function drawMarkers() {
  if (!state.markers) return;
  const from = state.firstTime;
  const shown = state.markerSignals.filter((s) => s.timeframe === state.timeframe && ofStrategy(s)
    && from !== null && chartTime(s.ts_event) >= from);
  const labelled = shown.length <= 24; // many markers: arrows only, the list on the right names the rules
  const markers = shown
    .map((s) => ({
      time: chartTime(s.ts_event),
      position: s.side === "BUY" ? "belowBar" : "aboveBar", color: s.side === "BUY" ? COLORS.up : COLORS.down,
      shape: s.side === "BUY" ? "arrowUp" : "arrowDown", text: labelled ? s.rule : "",
    }))
    .sort((a, b) => a.time - b.time);
  state.markers.setMarkers(markers);
  document.body.dataset.markers = String(markers.length);
}
