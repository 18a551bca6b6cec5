// How values are written for people: numbers, times.

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2, minimumFractionDigits: 2 });
const small = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 6 });

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
