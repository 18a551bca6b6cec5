// Signal markers on the price series: the selected timeframe's and strategy's signals.
import { chartTime } from "./chart.js";
import { COLORS, state } from "./state.js";
import { ofStrategy } from "./strategies.js";

export function drawMarkers() {
  if (!state.markers) return;
  const shown = state.signals.filter((s) => s.timeframe === state.timeframe && ofStrategy(s));
  const labelled = shown.length <= 24; // many markers: arrows only, the list on the right names the rules
  const markers = shown
    .map((s) => ({
      time: chartTime(s.ts_event),
      position: s.side === "BUY" ? "belowBar" : "aboveBar", color: s.side === "BUY" ? COLORS.up : COLORS.down,
      shape: s.side === "BUY" ? "arrowUp" : "arrowDown", text: labelled ? s.rule : "",
    }))
    .sort((a, b) => a.time - b.time);
  state.markers.setMarkers(markers);
}
