"use strict";
// Numbers, dates and changes, in the reader's language.

// Published precision: index values and prices to 2 decimal places, percentages to 2.
const PRECISION = { value: 2, price: 2, percent: 2, weight: 2 };
const LOCALES = { en: "en-GB", zh: "zh-CN" };
let lang = new URLSearchParams(location.search).get("lang") === "en" ? "en" : "zh";

const t = key => TEXT[lang][key] ?? key;
const locale = () => LOCALES[lang];

function number(value, digits = PRECISION.value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return new Intl.NumberFormat(locale(), {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  }).format(value);
}
function signed(value, digits = PRECISION.value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return new Intl.NumberFormat(locale(), {
    minimumFractionDigits: digits, maximumFractionDigits: digits, signDisplay: "exceptZero",
  }).format(value);
}
function percent(ratio, digits = PRECISION.percent, sign = true) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  return new Intl.NumberFormat(locale(), {
    style: "percent", minimumFractionDigits: digits, maximumFractionDigits: digits,
    signDisplay: sign ? "exceptZero" : "auto",
  }).format(ratio);
}
// A date of the index calendar ("2025-06-02"), shown in words: "2 June 2025", "2025年6月2日".
function longDate(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Intl.DateTimeFormat(locale(), {
    year: "numeric", month: "long", day: "numeric", timeZone: "UTC",
  }).format(new Date(Date.UTC(y, m - 1, d)));
}
function monthName(year, month) {
  return new Intl.DateTimeFormat(locale(), { month: "long", timeZone: "UTC" })
    .format(new Date(Date.UTC(year, month - 1, 1)));
}
// "2026-03-02T10:00:00Z" → "2026-03-02 10:00" (UTC)
function utcMinute(instant) {
  return new Date(instant).toISOString().slice(0, 16).replace("T", " ");
}

// The change of a series over a period: the last value against the last one on or before
// the same day one month (or year) earlier; "1d" against the previous published day.
function isoMinus(iso, months) {
  const [y, m, d] = iso.split("-").map(Number);
  const target = new Date(Date.UTC(y, m - 1 - months, 1));
  const last = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(d, last));
  return target.toISOString().slice(0, 10);
}
function changeOver(points, period) {
  const priced = points.filter(p => p.value !== null && p.value !== undefined);
  if (priced.length < 2) return null;
  const last = priced[priced.length - 1];
  let from = null;
  if (period === "1d") from = priced[priced.length - 2];
  else {
    const cut = isoMinus(last.date, period === "1m" ? 1 : 12);
    for (const p of priced) { if (p.date <= cut) from = p; else break; }
  }
  if (!from) return null;
  return { from, to: last, change: last.value - from.value, ratio: last.value / from.value - 1 };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter(c => c !== null && c !== undefined));
  return node;
}
const td = (text, cls, data) => el("td", { class: cls, data }, text);
const num = (text, data) => td(text, "num", data);
const isoTime = iso => el("time", { datetime: iso }, iso);
function escapeHTML(text) {
  return String(text).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
