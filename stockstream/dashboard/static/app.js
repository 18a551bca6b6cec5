// stockstream dashboard: reads the views API, then follows /live (Server-Sent Events).
// Every value from the system is rendered with textContent (never innerHTML), and the page
// runs under a strict Content-Security-Policy (no inline script/style, only our own origin).
"use strict";

(function () {
  const LWC = window.LightweightCharts;
  const $ = (id) => document.getElementById(id);
  // Points per page of history (?history=N, 10–1000): the first page, then one more each time the user
  // scrolls to the left edge (the API's next_cursor: from the Redis views, then the backfill's Parquet history).
  const HISTORY = Math.min(1000, Math.max(10, Number(new URLSearchParams(location.search).get("history")) || 500));
  const COLORS = {
    up: "#26a69a", down: "#ef5350", price: "#d9e1ea", sma: ["#f5a623", "#ffd54f", "#ff8a65"],
    ema: ["#b388ff", "#7e57c2", "#ce93d8"],
    bb: "#5c7080", vwap: "#26c6da", rsi: "#4fc3f7", macd: "#4f8ff7", macdSignal: "#f5a623", grid: "#1e2733", text: "#8391a3",
  };
  const state = {
    run: "live", runs: [], strategy: "", scorecards: [], symbol: null, venue: null, instruments: [], timeframe: "tick", timeframes: ["tick"], chart: null, series: {}, markers: null,
    signals: [], lastTime: {}, source: null, wasConnected: false, loadToken: 0, recommendation: null,
    history: [], candles: [], older: {}, loadingOlder: false, olderPages: 0, lastFrom: null,
  };
  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2, minimumFractionDigits: 2 });
  const small = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 6 });

  // ---- small helpers -------------------------------------------------------------------------
  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return Math.abs(value) >= 1 ? number.format(value) : small.format(value);
    return String(value);
  }
  function fmtTime(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return isNaN(date) ? String(iso) : date.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
  }
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function setText(id, value) { $(id).textContent = value; }
  function seconds(iso) { return Math.floor(Date.parse(iso) / 1000); }
  function timeframeSeconds(tf) {
    const match = /^(\d+)([smhd])$/.exec(tf);
    if (!match) return 0;
    return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
  }
  // Candle-timeframe snapshots carry the window's close time; a bar is drawn at its open time.
  function barTime(iso, tf) {
    const length = timeframeSeconds(tf);
    const t = Date.parse(iso) / 1000;
    return length ? Math.ceil(t / length) * length - length : Math.floor(t);
  }
  async function getJSON(path) {
    const answer = await fetch(path, { headers: { Accept: "application/json" } });
    if (answer.status === 401) {
      waitForSignIn("Your session ended: sign in again.").then(() => location.reload());
      throw new Error("signed out");
    }
    if (!answer.ok) throw new Error(path + " → HTTP " + answer.status);
    return answer.json();
  }

  // ---- sign-in (only when the API requires keys) ------------------------------------------------
  // The key is sent once to POST /session; the server answers with an HttpOnly, Secure,
  // SameSite=Strict cookie that the page cannot read. Nothing is kept in storage.
  function showSignIn(message) {
    if (state.source) state.source.close();
    $("signin").classList.remove("hidden");
    document.querySelector("main").classList.add("hidden");
    setText("signin-error", message || "");
    setConnection("wait", "signed out");
  }
  function waitForSignIn(message) {
    showSignIn(message || "");
    return new Promise((resolve) => {
      const attempt = async () => {
        const key = $("signin-key").value.trim();
        if (!key) return;
        const answer = await fetch("/session", {
          method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ key }),
        });
        $("signin-key").value = "";
        if (!answer.ok) { setText("signin-error", answer.status === 429 ? "Too many attempts; wait a moment."
          : "That key was refused (unknown, revoked or mistyped)."); return; }
        $("signin").classList.add("hidden");
        document.querySelector("main").classList.remove("hidden");
        resolve();
      };
      $("signin-button").onclick = attempt;
      $("signin-key").onkeydown = (event) => { if (event.key === "Enter") attempt(); };
    });
  }
  async function ensureSession() {
    const answer = await fetch("/session", { headers: { Accept: "application/json" } });
    const session = await answer.json();
    // With OIDC sign-in configured, a link to GET /session/oidc (the provider sends the browser back signed in).
    if (session.oidc_login) $("signin-oidc").classList.remove("hidden");
    if (session.auth && !session.signed_in) await waitForSignIn();
    if (session.auth) {
      const button = $("sign-out");
      button.classList.remove("hidden");
      button.onclick = async () => { await fetch("/session", { method: "DELETE" }); location.reload(); };
    }
  }
  function enc(text) { return encodeURIComponent(text); }
  // The views of the selected run (?run=ID, docs/runs.md); live needs no parameter.
  function withRun(path) {
    return state.run === "live" ? path : path + (path.includes("?") ? "&" : "?") + "run=" + enc(state.run);
  }

  // ---- chart ---------------------------------------------------------------------------------
  function buildChart() {
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
    if (state.timeframe === "tick") {
      state.series.price = chart.addSeries(LWC.LineSeries, { color: COLORS.price, lineWidth: 2, title: "price" }, 0);
    } else {
      state.series.price = chart.addSeries(LWC.CandlestickSeries, {
        upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up,
        wickDownColor: COLORS.down }, 0);
    }
    state.markers = LWC.createSeriesMarkers(state.series.price, []);
    const rsi = chart.addSeries(LWC.LineSeries, { color: COLORS.rsi, lineWidth: 1, title: "RSI" }, 1);
    rsi.createPriceLine({ price: 70, color: COLORS.down, lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "70" });
    rsi.createPriceLine({ price: 30, color: COLORS.up, lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "30" });
    state.series.rsi = rsi;
    state.series.macd_hist = chart.addSeries(LWC.HistogramSeries, { color: COLORS.macd, title: "hist" }, 2);
    state.series.macd = chart.addSeries(LWC.LineSeries, { color: COLORS.macd, lineWidth: 1, title: "MACD" }, 2);
    state.series.macd_signal = chart.addSeries(LWC.LineSeries, { color: COLORS.macdSignal, lineWidth: 1, title: "signal" }, 2);
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
    state.series[name] = state.chart.addSeries(LWC.LineSeries, options, pane);
    return state.series[name];
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
  function updateSeries(name, series, point) {
    const last = state.lastTime[name];
    if (last !== undefined && point.time < last) return; // older than what is drawn: ignore
    series.update(point);
    state.lastTime[name] = point.time;
  }
  function snapshotPoints(snapshot) {
    const time = state.timeframe === "tick" ? seconds(snapshot.ts_event) : barTime(snapshot.ts_event, state.timeframe);
    const points = {};
    for (const [name, value] of Object.entries(snapshot.values)) {
      if (value === null || value === undefined) continue;
      if (name === "macd_hist") points.macd_hist = { time, value, color: value >= 0 ? COLORS.up : COLORS.down };
      else points[name] = { time, value };
    }
    if (state.timeframe === "tick") points.__price = { time, value: snapshot.price };
    return points;
  }
  function drawHistory(history, candles) {
    const byName = {};
    for (const snapshot of history) {
      for (const [name, point] of Object.entries(snapshotPoints(snapshot))) (byName[name] = byName[name] || []).push(point);
    }
    if (state.timeframe === "tick") setSeries("price", state.series.price, byName.__price || []);
    else setSeries("price", state.series.price, candles.map((c) => ({
      time: seconds(c.ts_open), open: c.open, high: c.high, low: c.low, close: c.close })));
    for (const [name, points] of Object.entries(byName)) {
      if (name === "__price") continue;
      const series = name === "macd_hist" || name === "macd" || name === "macd_signal" ? state.series[name] : lineFor(name);
      if (series) setSeries(name, series, points);
    }
    const empty = !(state.timeframe === "tick" ? (byName.__price || []).length : candles.length);
    $("chart-empty").classList.toggle("hidden", !empty);
  }
  function applySnapshot(snapshot) {
    for (const [name, point] of Object.entries(snapshotPoints(snapshot))) {
      if (name === "__price") { updateSeries("price", state.series.price, point); continue; }
      const series = name === "macd_hist" || name === "macd" || name === "macd_signal" ? state.series[name] : lineFor(name);
      if (series) updateSeries(name, series, point);
    }
    $("chart-empty").classList.add("hidden");
  }
  function drawMarkers() {
    if (!state.markers) return;
    const shown = state.signals.filter((s) => s.timeframe === state.timeframe && ofStrategy(s));
    const labelled = shown.length <= 24; // many markers: arrows only, the list on the right names the rules
    const markers = shown
      .map((s) => ({
        time: state.timeframe === "tick" ? seconds(s.ts_event) : barTime(s.ts_event, state.timeframe),
        position: s.side === "BUY" ? "belowBar" : "aboveBar", color: s.side === "BUY" ? COLORS.up : COLORS.down,
        shape: s.side === "BUY" ? "arrowUp" : "arrowDown", text: labelled ? s.rule : "",
      }))
      .sort((a, b) => a.time - b.time);
    state.markers.setMarkers(markers);
  }

  // ---- panels --------------------------------------------------------------------------------
  function showTick(tick) {
    if (!tick) return;
    setText("price", fmt(tick.price));
    setText("price-time", fmtTime(tick.ts_event));
  }
  function showIndicators(snapshot) {
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
  function showRecommendation(rec) {
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
  function recommendationFromSource(source) {
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
  function showSignals() {
    $("signals").replaceChildren(...state.signals.filter(ofStrategy).slice(0, 50).map((s) => signalItem(s, false)));
  }
  function addSignal(signal) {
    if (!ofStrategy(signal) || state.signals.some((s) => s.signal_id === signal.signal_id)) return;
    state.signals.unshift(signal);
    state.signals.sort((a, b) => Date.parse(b.ts_event) - Date.parse(a.ts_event));
    const list = $("signals");
    list.prepend(signalItem(signal, true));
    while (list.children.length > 50) list.lastElementChild.remove();
    drawMarkers();
  }
  // ---- strategies and scorecards ------------------------------------------------------------------
  // A signal's strategy (a version-2 signal: its rule). "" selects every strategy.
  function strategyOf(signal) { return signal.strategy || signal.rule; }
  function ofStrategy(signal) { return !state.strategy || strategyOf(signal) === state.strategy; }
  function percent(value, digits) {
    return (value > 0 ? "+" : "") + (value * 100).toFixed(digits) + " %";
  }
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
  function showScorecards() {
    const cards = state.scorecards.filter((card) => !state.strategy || card.strategy === state.strategy);
    $("scorecards").replaceChildren(...cards.map(scorecardRow));
    $("scorecards-empty").classList.toggle("hidden", cards.length > 0);
    setText("scorecards-scope", state.symbol + "@" + state.venue + (state.run === "live" ? "" : " · run " + state.run));
  }
  // The strategy selector: every strategy of the instrument's signals and scorecards; the choice is kept.
  function fillStrategies() {
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
  function scorecardsPath() {
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

  function dailyRow(day) {
    const row = el("tr");
    row.dataset.date = day.date;
    for (const value of [day.date, day.open, day.high, day.low, day.close, day.mean_price, day.vwap, day.volume,
                         day.tick_count, day.buy_count, day.sell_count, day.final ? "yes" : "no"]) {
      row.append(el("td", "", typeof value === "number" && Number.isInteger(value) && value < 1e6 ? String(value) : fmt(value)));
    }
    return row;
  }
  function showDaily(days) {
    $("daily").replaceChildren(...days.slice().reverse().map(dailyRow));
  }
  function upsertDaily(day) {
    const body = $("daily");
    const existing = Array.from(body.children).find((row) => row.dataset.date === day.date);
    if (existing) existing.replaceWith(dailyRow(day));
    else body.prepend(dailyRow(day));
  }
  function toast(title, text, url) {
    const box = el("div", "toast");
    const close = el("button", "toast-close", "×");
    close.type = "button";
    close.addEventListener("click", () => box.remove());
    box.append(close, el("div", "toast-title", title), el("div", "toast-text", text));
    if (url) {
      try {
        const parsed = new URL(url, location.href);
        if (parsed.protocol === "http:" || parsed.protocol === "https:") {
          const link = el("a", "", "details");
          link.href = parsed.href; link.rel = "noopener noreferrer"; link.target = "_blank";
          box.append(link);
        }
      } catch (_) { /* not a URL: no link */ }
    }
    $("toasts").prepend(box);
    setTimeout(() => box.remove(), 15000);
  }
  function notify(body) {
    toast(String(body.title), String(body.text), typeof body.url === "string" ? body.url : null);
    if ("Notification" in window && Notification.permission === "granted") {
      try { new Notification(String(body.title), { body: String(body.text), tag: String(body.signal_id || "") }); }
      catch (_) { /* some browsers allow notifications only from a service worker */ }
    }
  }
  function setConnection(kind, text) {
    const pill = $("connection");
    pill.className = "pill pill-" + kind;
    pill.textContent = text;
  }

  // ---- data loading --------------------------------------------------------------------------
  async function loadAll() {
    const token = ++state.loadToken;
    // Views are per instrument: the venue's own series of the symbol (BTC-USD@kraken, BTC-USD@index …).
    const base = `/instruments/${enc(state.venue)}/${enc(state.symbol)}`;
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
    buildChart();
    showTick(latest.tick);
    if (!latest.tick && indicators.latest) setText("price", fmt(indicators.latest.price));
    showIndicators(indicators.latest || latest.indicators[state.timeframe] || null);
    showRecommendation(rec);
    state.signals = signals.signals;
    state.scorecards = scorecards.scorecards;
    fillStrategies();
    showSignals();
    showScorecards();
    showDaily(daily.days);
    state.history = indicators.history.slice();
    state.candles = candles.candles.slice();
    state.older = { indicators: indicators.next_cursor, candles: candles.next_cursor || null };
    state.olderPages = 0; state.lastFrom = null;
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
  function onVisibleRange(range) {
    if (!range) return;
    const movedLeft = state.lastFrom !== null && range.from < state.lastFrom;
    state.lastFrom = range.from;
    if (movedLeft && range.from < 10) loadOlder().catch(showError);
  }
  async function loadOlder() {
    const wantCandles = state.timeframe !== "tick";
    if (state.loadingOlder || !(state.older.indicators || (wantCandles && state.older.candles))) return;
    state.loadingOlder = true;
    const token = state.loadToken;
    try {
      const base = `/instruments/${enc(state.venue)}/${enc(state.symbol)}`;
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
      const before = Number(document.body.dataset.historyPoints || 0);
      const visible = state.chart.timeScale().getVisibleLogicalRange();
      state.history = indicators.history.concat(state.history);
      state.candles = candles.candles.concat(state.candles);
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

  function connectLive() {
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
      if (state.wasConnected) loadAll().catch(showError); // fill the gap after a reconnect
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

  function showError(error) {
    if (error && error.message === "signed out") return; // the sign-in panel says it
    setConnection("down", "error");
    toast("Could not load data", String(error && error.message ? error.message : error), null);
  }

  function venuesOf(symbol) {
    return state.instruments.filter((item) => item.symbol === symbol).map((item) => item.venue);
  }

  function hashParts() {
    // #SYMBOL|venue|timeframe|run|strategy (older links: #SYMBOL|timeframe, #SYMBOL|venue|timeframe: live)
    const parts = decodeURIComponent(location.hash.slice(1)).split("|");
    const [sym, venue, tf, run, strategy] = parts.length === 2 ? [parts[0], null, parts[1], null, null] : parts;
    return { sym, venue, tf, run: run || "live", strategy: /^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(strategy || "") ? strategy : "" };
  }
  function choose(symbols, timeframes, wanted) {
    state.symbol = symbols.includes(wanted.sym) ? wanted.sym : (symbols.includes("BTC-USD") ? "BTC-USD" : symbols[0]);
    const venues = venuesOf(state.symbol);
    state.venue = venues.includes(wanted.venue) ? wanted.venue : venues[0];
    state.timeframe = timeframes.includes(wanted.tf) ? wanted.tf : "tick";
  }
  function writeHash() {
    const parts = [state.symbol, state.venue, state.timeframe];
    if (state.run !== "live" || state.strategy) parts.push(state.run);
    if (state.strategy) parts.push(state.strategy);
    history.replaceState(null, "", "#" + encodeURIComponent(parts.join("|")));
  }

  function fillSelect(select, values, current) {
    select.replaceChildren(...values.map((value) => {
      const option = el("option", "", value);
      option.value = value;
      option.selected = value === current;
      return option;
    }));
  }

  // The run selector: live, then every run whose views exist (GET /runs); without Kafka, live alone.
  async function loadRuns() {
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
  async function loadInstruments() {
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
  function showSelection(symbols) {
    fillSelect($("symbol"), symbols, state.symbol);
    fillSelect($("venue"), venuesOf(state.symbol), state.venue);
    fillSelect($("timeframe"), state.timeframes, state.timeframe);
  }

  async function start() {
    if (!LWC) { showError(new Error("chart library did not load")); return; }
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
      loadAll().then(connectLive).catch(showError);
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
        if (!state.symbol) { document.body.dataset.run = state.run; connectLive(); return; }  // a run with no views
        await loadAll();
        connectLive();
      } catch (error) { showError(error); }
    });
    $("strategy").addEventListener("change", () => {
      state.strategy = $("strategy").value;
      writeHash();
      loadAll().catch(showError);  // the recommendation of that strategy, its signals, markers and scorecards
    });
    $("symbol").addEventListener("change", changed);
    $("venue").addEventListener("change", changed);
    $("timeframe").addEventListener("change", changed);
    $("notify-toggle").addEventListener("click", async () => {
      if (!("Notification" in window)) { toast("Notifications", "This browser has no Notification API.", null); return; }
      const permission = await Notification.requestPermission();
      setText("notify-toggle", permission === "granted" ? "Notifications on" : "Notifications blocked");
    });
    await loadAll();
    connectLive();
  }

  start().catch(showError);
})();
