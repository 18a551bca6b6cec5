// The strategy selector and the scorecard panel (outcomes of the signals, per strategy/timeframe/horizon).
import { $, el, setText } from "./dom.js";
import { percent } from "./format.js";
import { getJSON } from "./session.js";
import { enc, state, withRun } from "./state.js";

// A signal's strategy (a version-2 signal: its rule). "" selects every strategy.
export function strategyOf(signal) { return signal.strategy || signal.rule; }
export function ofStrategy(signal) { return !state.strategy || strategyOf(signal) === state.strategy; }

function scorecardRow(card) {
  const row = el("tr");
  row.dataset.key = [card.strategy, card.timeframe, card.horizon].join("|");
  const factor = card.profit_factor === null ? "no loss" : card.profit_factor === "inf" ? "∞"
    : Number(card.profit_factor).toFixed(2);
  for (const value of [card.strategy, card.timeframe, card.horizon, String(card.outcomes),
                       (card.hit_rate * 100).toFixed(1) + " %", percent(card.mean_return, 3),
                       percent(card.median_return, 3), factor]) {
    row.append(el("td", "", value));
  }
  return row;
}
// The instrument's scorecards of the selected strategy (all of them for "every strategy").
export function showScorecards() {
  const cards = state.scorecards.filter((card) => !state.strategy || card.strategy === state.strategy);
  $("scorecards").replaceChildren(...cards.map(scorecardRow));
  $("scorecards-empty").classList.toggle("hidden", cards.length > 0);
  setText("scorecards-scope", state.symbol + "@" + state.venue + (state.run === "live" ? "" : " · run " + state.run));
}
// The strategy selector: every strategy of the instrument's signals and scorecards; the choice is kept.
export function fillStrategies() {
  const names = new Set(state.scorecards.map((card) => card.strategy));
  for (const signal of state.signals) names.add(strategyOf(signal));
  if (state.strategy) names.add(state.strategy);
  const every = el("option", "", "every strategy");
  every.value = "";
  $("strategy").replaceChildren(every, ...[...names].sort().map((name) => {
    const option = el("option", "", name);
    option.value = name;
    return option;
  }));
  $("strategy").value = state.strategy;
}
export function scorecardsPath() {
  return withRun(`/scorecards?symbol=${enc(state.symbol)}&venue=${enc(state.venue)}`);
}
// Outcomes mature after their horizon and are not pushed live: the live panel is read again every 30 s.
setInterval(() => {
  if (state.run !== "live" || !state.symbol || document.hidden) return;
  const token = state.loadToken;
  getJSON(scorecardsPath()).then((body) => {
    if (token !== state.loadToken) return;
    state.scorecards = body.scorecards;
    showScorecards();
  }).catch(() => { /* the next full load reports errors */ });
}, 30000);
