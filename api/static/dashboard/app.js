"use strict";
// The dashboard's state, data, router and live stream. Views are in views.js.

const params = new URLSearchParams(location.search);
const state = {
  indices: [], commodities: [], series: new Map(), latest: new Map(), details: new Map(),
  assessments: new Map(), picked: null, notices: null, methodology: null, calendars: new Map(),
  view: null,
};
const charts = {};
window.bcpi = { state, charts };

async function getJSON(url) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) {
    let detail = "";
    try { detail = (await answer.json()).detail; } catch (e) { /* not JSON */ }
    const error = new Error(detail || `${url}: ${answer.status}`);
    error.status = answer.status;
    throw error;
  }
  return answer.json();
}
const indexURL = code => `/v1/indices/${encodeURIComponent(code)}`;
const indexByCode = code => state.indices.find(ix => ix.code === code);
const name = ix => (lang === "zh" ? ix.name_zh : ix.name_en);

async function series(code) {
  if (!state.series.has(code)) state.series.set(code, (await getJSON(`${indexURL(code)}/series`)).points);
  return state.series.get(code);
}
async function latestValues() {
  await Promise.all(state.indices.filter(ix => !state.latest.has(ix.code)).map(async ix => {
    try { state.latest.set(ix.code, await getJSON(`${indexURL(ix.code)}/latest`)); }
    catch (e) { if (e.status !== 404) throw e; /* no value published yet */ }
  }));
}
async function assessments() {
  await Promise.all(state.commodities.filter(c => !state.assessments.has(c.code)).map(async c => {
    const body = await getJSON(`/v1/assessments/${encodeURIComponent(c.code)}/series?order=desc&limit=2`);
    state.assessments.set(c.code, body.points);
  }));
}
async function methodology() {
  if (!state.methodology) {
    try { state.methodology = await getJSON("/v1/methodology"); }
    catch (e) { state.methodology = { versions: [], proposals: [] }; }
  }
  return state.methodology;
}
async function notices() {
  if (!state.notices) state.notices = (await getJSON("/v1/corrections")).corrections.slice().reverse();
  return state.notices;
}
async function calendarYear(year) {
  const key = year || "current";
  if (!state.calendars.has(key)) state.calendars.set(key, await getJSON(`/v1/calendar${year ? `?year=${year}` : ""}`));
  return state.calendars.get(key);
}

// One ECharts instance per chart element, in the reader's language (month names on the
// time axis come from the ECharts locale), drawn as SVG.
function chartFor(id) {
  const node = document.getElementById(id);
  const existing = charts[id];
  if (existing && existing.getDom() === node && existing.bcpiLang === lang) return existing;
  if (existing) existing.dispose();
  const chart = echarts.init(node, null, { renderer: "svg", locale: lang === "zh" ? "ZH" : "EN" });
  chart.bcpiLang = lang;
  charts[id] = chart;
  return chart;
}
function tooltip(items) {
  if (!items.length) return "";
  const day = longDate(new Date(items[0].value[0]).toISOString().slice(0, 10));
  const rows = items.map(p =>
    `<div class="tip-row">${p.marker}<span>${escapeHTML(p.seriesName)}</span> ` +
    `<b class="tip-value">${number(p.value[1])}</b></div>`);
  return `<div class="tip-date">${escapeHTML(day)}</div>${rows.join("")}`;
}
function drawLines(id, lines) {
  const chart = chartFor(id);
  const points = lines.reduce((n, line) => n + line.points.length, 0);
  chart.setOption({
    animation: false,
    title: points ? { show: false } : { show: true, text: t("empty"), left: "center", top: "middle" },
    tooltip: { trigger: "axis", formatter: tooltip },
    legend: { top: 4, type: "scroll" },
    grid: { left: 64, right: 24, top: 40, bottom: 70 },
    xAxis: { type: "time" },
    yAxis: { type: "value", scale: true, axisLabel: { formatter: v => number(v, 0) } },
    dataZoom: [{ type: "inside" }, { type: "slider", bottom: 16, labelFormatter: v => longDate(new Date(v).toISOString().slice(0, 10)) }],
    series: lines.map(line => ({
      id: line.id, name: line.name, type: "line", showSymbol: false,
      lineStyle: { width: line.bold ? 2.6 : 1.3 },
      data: line.points.filter(p => p.value !== null).map(p => [p.date, p.value]),
    })),
  }, { replaceMerge: ["series"] });
  const node = document.getElementById(id);
  node.dataset.series = String(lines.length);
  node.dataset.points = String(points);
  return chart;
}

const ROUTES = [
  [/^#?\/?$/, () => viewOverview()],
  [/^#\/index\/([^/]+)$/, code => viewIndex(decodeURIComponent(code))],
  [/^#\/explain\/([^/]+)\/(\d{4}-\d{2}-\d{2})$/, (code, day) => viewExplain(decodeURIComponent(code), day)],
  [/^#\/calendar(?:\/(\d{4}))?$/, year => viewCalendar(year ? Number(year) : null)],
  [/^#\/corrections$/, () => viewCorrections()],
  [/^#\/methodology$/, () => viewMethodology()],
];
let routing = 0;
async function route() {
  const turn = ++routing;
  delete document.body.dataset.ready;  // "1" once the view is drawn, "error" if it failed
  document.getElementById("error").textContent = "";
  const hash = location.hash || "#/";
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  const [pattern, render] = found || ROUTES[0];
  try {
    const view = await render(...(hash.match(pattern) || []).slice(1));
    if (turn !== routing) return;
    state.view = view.name;
    const main = document.getElementById("view");
    main.replaceChildren(...view.nodes);
    if (view.after) view.after();
    document.body.dataset.view = view.name;
    document.querySelectorAll("nav a").forEach(a => a.classList.toggle("current", a.dataset.view === view.name));
    document.body.dataset.ready = "1";
  } catch (e) {
    if (turn !== routing) return;
    document.getElementById("view").replaceChildren();
    document.getElementById("error").textContent = e.message || String(e);
    document.body.dataset.ready = "error";
  }
}

function applyText() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = `bcpi · ${t("title")}`;
  document.querySelectorAll("[data-i18n]").forEach(node => { node.textContent = t(node.dataset.i18n); });
  document.getElementById("language").textContent = t("language");
}
function switchLanguage() {
  lang = lang === "zh" ? "en" : "zh";
  const url = new URL(location.href);
  url.searchParams.set("lang", lang);
  history.replaceState(null, "", url);
  applyText();
  return route();
}

function live() {
  if (!window.EventSource || params.get("live") === "0") return;
  const source = new EventSource("/v1/stream");
  const badge = document.getElementById("live");
  source.onopen = () => { badge.dataset.i18n = "live_on"; badge.textContent = t("live_on"); };
  source.onerror = () => { badge.dataset.i18n = "live_off"; badge.textContent = t("live_off"); };
  source.addEventListener("value", event => {
    const v = JSON.parse(event.data);
    if (v.value !== null) state.latest.set(v.code, v);
    const points = state.series.get(v.code);
    if (points) {
      const i = points.findIndex(p => p.date === v.date);
      if (v.value === null) { if (i >= 0) points.splice(i, 1); }
      else if (i >= 0) points[i] = v;
      else { points.push(v); points.sort((a, b) => (a.date < b.date ? -1 : 1)); }
    }
    state.notices = null;
    if (state.view === "overview") refreshOverview();
  });
}

async function main() {
  applyText();
  document.getElementById("language").onclick = switchLanguage;
  [state.indices, state.commodities] = await Promise.all([getJSON("/v1/indices"), getJSON("/v1/commodities")]);
  window.addEventListener("hashchange", route);
  await route();
}
window.addEventListener("resize", () => Object.values(charts).forEach(c => c.resize()));
// The live stream opens once the page has loaded, so that it never holds the load event.
window.addEventListener("load", live);
main().catch(e => { document.getElementById("error").textContent = String(e); document.body.dataset.ready = "error"; });
