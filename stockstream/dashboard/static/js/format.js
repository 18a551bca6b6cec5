// How values are written for people: prices and indicator values at the instrument's precision, times.

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2, minimumFractionDigits: 2 });
const small = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 6 });

// Significant digits a price is shown with; the decimals follow from the instrument's price level
// (65,012.40 · 3,101.25 · 1.2345 · 0.12104 · 0.000012345), never fewer than 2 nor more than 10.
const SIGNIFICANT = 5;

export function priceDecimals(level) {
  if (!Number.isFinite(level) || level <= 0) return 2;
  return Math.min(10, Math.max(2, SIGNIFICANT - 1 - Math.floor(Math.log10(level))));
}

// MACD, its signal and histogram are differences of averages of the price: far smaller than the price.
export const DIFFERENCE_EXTRA_DECIMALS = 2;
// Indicators on a fixed scale (0–100 and the like), not in the price's unit.
const OSCILLATOR = /^(rsi|stoch|adx|plus_di|minus_di|cci|willr|roc)(_|$)/;

// Decimals of an indicator value; null: not in the price's unit (written by fmt).
export function indicatorDecimals(name, decimals) {
  if (OSCILLATOR.test(name)) return 2;
  if (/^macd(_|$)/.test(name)) return decimals + DIFFERENCE_EXTRA_DECIMALS;
  if (/^(obv|volume)(_|$)/.test(name)) return null;
  return decimals;  // moving averages, bands, VWAP, ATR, channels: the price's unit
}

const fixed = new Map();
// A number with exactly ``decimals`` decimals (a tiny negative value is written 0, never −0.00).
export function fmtFixed(value, decimals) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (!fixed.has(decimals)) {
    fixed.set(decimals, new Intl.NumberFormat(undefined, {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals, signDisplay: "negative" }));
  }
  return fixed.get(decimals).format(value);
}

export function fmtPrice(value, decimals) { return fmtFixed(value, decimals); }

export function fmtIndicator(name, value, decimals) {
  const digits = indicatorDecimals(name, decimals);
  return digits === null ? fmt(value) : fmtFixed(value, digits);
}

// Lightweight Charts' price format for a series with ``decimals`` decimals (axis, labels, crosshair).
export function chartPriceFormat(decimals) {
  return { type: "price", precision: decimals, minMove: Number((10 ** -decimals).toFixed(decimals)) };
}

export function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Math.abs(value) >= 1 ? number.format(value) : small.format(value);
  return String(value);
}

export function fmtTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return isNaN(date) ? String(iso) : date.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
}

export function percent(value, digits) {
  return (value > 0 ? "+" : "") + (value * 100).toFixed(digits) + " %";
}
