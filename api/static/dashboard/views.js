"use strict";
// The dashboard's pages: each view fetches what it needs and returns its nodes.

const link = (href, text, attrs = {}) => el("a", { href, ...attrs }, text);
const indexLink = code => link(`#/index/${encodeURIComponent(code)}`, code);
const explainHash = (code, day) => `#/explain/${encodeURIComponent(code)}/${day}`;
function statusCell(status) {
  return el("td", { class: `status-${status}`, data: { status } }, t(status));
}
function table(id, headings, rows, caption) {
  return el("table", { id },
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, ...headings.map(h => el("th", {}, t(h))))),
    el("tbody", {}, ...rows));
}
const emptyRow = key => el("tr", {}, td(t(key)));
const heading = (key, level = "h2") => el(level, { data: { i18n: key } }, t(key));

// ---------------------------------------------------------------- overview
function shownLines() {
  const lines = state.indices.filter(ix => ix.kind !== "commodity");
  if (state.picked) lines.push(indexByCode(state.picked));
  return lines.filter(ix => state.series.has(ix.code)).map(ix => ({
    id: ix.code, name: `${ix.code} ${name(ix)}`, bold: ix.kind === "composite", points: state.series.get(ix.code),
  }));
}
function latestRows() {
  return state.indices.map(ix => {
    const last = state.latest.get(ix.code);
    const day = state.series.has(ix.code) ? changeOver(state.series.get(ix.code), "1d") : null;
    const base = indexURL(ix.code);
    const links = el("td", {}, link(`${base}/series?format=csv`, "CSV", { download: "" }), " · ",
      link(`${base}/series?format=parquet`, "Parquet"));
    if (last) links.append(" · ", link(explainHash(ix.code, last.date), t("explain")));
    return el("tr", { data: { code: ix.code } },
      el("td", {}, indexLink(ix.code)), td(name(ix)), el("td", {}, last ? isoTime(last.date) : "–"),
      num(last ? number(last.value) : "–", { field: "value" }),
      num(day && last && day.to.date === last.date ? signed(day.change) : "–", { field: "change" }),
      num(day && last && day.to.date === last.date ? percent(day.ratio) : "–", { field: "percent" }),
      last ? statusCell(last.status) : td("–"), links);
  });
}
function assessmentRows() {
  return state.commodities.map(c => {
    const [last, previous] = state.assessments.get(c.code) || [];
    const change = last && previous && last.value !== null && previous.value !== null
      ? { change: last.value - previous.value, ratio: last.value / previous.value - 1 } : null;
    return el("tr", { data: { code: c.code } },
      el("td", {}, indexLink(c.code)), td(lang === "zh" ? c.name_zh : c.name_en),
      el("td", {}, last ? isoTime(last.date) : "–"),
      num(!last ? "–" : last.value === null ? t("suspended") : number(last.value, PRECISION.price), { field: "price" }),
      td(c.unit, null, { field: "unit" }), td(c.currency, null, { field: "currency" }),
      num(change ? signed(change.change, PRECISION.price) : "–", { field: "change" }),
      num(change ? percent(change.ratio) : "–", { field: "percent" }),
      td(last ? t(`fallback_${last.fallback}`) : "–", null, { fallback: last ? last.fallback : "" }));
  });
}
function refreshOverview() {
  drawLines("chart", shownLines());
  document.querySelector("#latest tbody").replaceChildren(...latestRows());
}
async function viewOverview() {
  await Promise.all([
    Promise.all(state.indices.map(ix => series(ix.code))), latestValues(), assessments(), methodology(),
  ]);
  const picker = el("select", { id: "commodity" }, el("option", { value: "" }, t("none")),
    ...state.indices.filter(ix => ix.kind === "commodity").map(ix =>
      el("option", { value: ix.code }, `${ix.code} · ${ix.name_zh} · ${ix.name_en}`)));
  picker.value = state.picked || "";
  picker.onchange = async () => {
    state.picked = picker.value || null;
    if (state.picked) await series(state.picked);
    drawLines("chart", shownLines());
  };
  return {
    name: "overview",
    nodes: [
      el("div", { class: "bar" }, el("label", {}, t("picker"), " ", picker)),
      el("div", { id: "chart", role: "img", "aria-label": t("title") }),
      table("latest", ["code", "index", "date", "value", "change_1d", "change_pct", "status", "downloads"],
        latestRows(), t("indices_caption")),
      heading("assessments_title"),
      table("assessments", ["code", "commodity", "date", "price", "unit", "currency", "change", "change_pct", "assessed_by"],
        assessmentRows()),
      ...methodologySections(state.methodology),
    ],
    after: () => drawLines("chart", shownLines()),
  };
}

// ---------------------------------------------------------------- methodology
function changelog(entries) {
  if (!entries.length) return td("–");
  return el("td", {}, el("ul", {}, ...entries.map(entry => el("li", {}, entry))));
}
function methodologySections(m) {
  const versions = m.versions.map(v => {
    const status = v.in_force_today ? "in_force_today" : v.state;
    return el("tr", { data: { version: v.version } }, td(v.version), el("td", {}, isoTime(v.effective_from)),
      td(t(status), null, { state: status }), changelog(v.changelog),
      el("td", {}, link(`/v1/methodology/${encodeURIComponent(v.version)}`, t("document"))));
  });
  const pending = m.proposals.filter(p => p.status === "consultation").map(p => {
    const status = p.open ? "open" : "closed";
    const composite = p.backtest && p.backtest.indices.find(s => s.index === "BCPI");
    const line = composite
      ? t("backtest_line")(composite.index, composite.days_differing, composite.days_compared,
        composite.tracking_error === null ? "–" : `${(composite.tracking_error * 100).toFixed(4)}%`)
      : "–";
    return el("tr", { data: { version: p.version } }, td(p.version), el("td", {}, isoTime(p.effective_from)),
      el("td", {}, isoTime(p.opens)), el("td", {}, isoTime(p.closes)), td(t(status), null, { state: status }),
      td(line), changelog(p.changelog));
  });
  return [
    heading("versions_title"),
    table("versions", ["version", "effective", "state", "changes", "document_heading"], versions),
    heading("consultations_title"),
    table("consultations", ["version", "effective", "opens", "closes", "state", "backtest", "changes"],
      pending.length ? pending : [emptyRow("no_consultations")]),
  ];
}
async function viewMethodology() {
  return { name: "methodology", nodes: methodologySections(await methodology()) };
}

// ---------------------------------------------------------------- one index
async function viewIndex(code) {
  const [detail, points] = await Promise.all([getJSON(indexURL(code)), series(code)]);
  const ix = indexByCode(code) || detail;
  const last = detail.latest;
  const fact = (key, ...value) => [el("dt", {}, t(key)), el("dd", {}, ...value)];
  const changes = ["1d", "1m", "1y"].map(period => {
    const c = changeOver(points, period);
    return el("tr", { data: { period } }, td(t(`period_${period}`)),
      el("td", {}, c ? isoTime(c.from.date) : "–"), num(c ? number(c.from.value) : "–", { field: "from" }),
      num(c ? signed(c.change) : "–", { field: "change" }), num(c ? percent(c.ratio) : "–", { field: "percent" }));
  });
  const recent = points.filter(p => p.value !== null).slice(-10).reverse().map(p =>
    el("tr", { data: { date: p.date } }, el("td", {}, isoTime(p.date)), num(number(p.value)), statusCell(p.status),
      el("td", {}, link(explainHash(code, p.date), t("explain")))));
  const members = detail.constituents.map(c => el("tr", { data: { code: c.code } },
    el("td", {}, indexLink(c.code)), td(lang === "zh" ? c.name_zh : c.name_en),
    num(percent(c.weight, PRECISION.weight, false)), el("td", {}, isoTime(c.effective_from))));
  const base = indexURL(code);
  return {
    name: "index",
    nodes: [
      el("h2", { id: "index-title" }, `${code} · ${name(ix)}`),
      el("div", { class: "sub" }, t(`kind_${detail.kind}`)),
      el("dl", { class: "facts", id: "facts" },
        ...fact("latest", last ? el("b", { data: { field: "latest" } }, number(last.value)) : "–",
          last ? ` · ${longDate(last.date)} · ${t(last.status)}` : ""),
        ...fact("methodology_version", link("#/methodology", detail.methodology_version, { "data-field": "methodology" })),
        ...fact("base_date", el("span", { data: { field: "base-date", date: detail.base_date } }, longDate(detail.base_date))),
        ...fact("base_value", number(detail.base_value)),
        ...fact("unit", detail.unit)),
      el("h2", {}, t("changes_title")),
      table("changes", ["period", "since", "value", "change", "change_pct"], changes),
      el("div", { id: "index-chart", class: "chart", role: "img", "aria-label": code }),
      el("p", { class: "downloads" },
        link(`${base}/series?format=csv`, t("download_csv"), { id: "download-csv", download: "" }), " · ",
        link(`${base}/series?format=parquet`, t("download_parquet"))),
      ...(members.length ? [el("h2", {}, t("constituents_title")),
        table("constituents", ["code", "commodity", "weight", "effective"], members)] : []),
      el("h2", {}, t("recent_title")),
      table("recent", ["date", "value", "status", "explanation"], recent.length ? recent : [emptyRow("empty")]),
    ],
    after: () => drawLines("index-chart", [{ id: code, name: `${code} ${name(ix)}`, bold: true, points }]),
  };
}

// ---------------------------------------------------------------- calendar
async function viewCalendar(year) {
  const answer = await calendarYear(year);
  const months = new Map();
  for (const d of answer.days) {
    const month = Number(d.date.slice(5, 7));
    if (!months.has(month)) months.set(month, []);
    months.get(month).push(d);
  }
  const rows = [...months].map(([month, days]) => el("tr", { data: { month: String(month) } },
    td(monthName(answer.year, month)), num(String(days.length)),
    td(days.map(d => Number(d.date.slice(8, 10))).join(", ")),
    td([...new Set(days.map(d => d.fixing_at.slice(11, 16)))].join(", "))));
  return {
    name: "calendar",
    nodes: [
      el("h2", {}, t("calendar_title")(answer.year)),
      el("p", { class: "sub" }, t("calendar_note")),
      answer.provisional ? el("p", { class: "note", id: "provisional" }, t("provisional_year")) : null,
      el("p", {}, link(`#/calendar/${answer.year - 1}`, t("previous_year")), " · ",
        link(`#/calendar/${answer.year + 1}`, t("next_year"))),
      table("calendar", ["month", "publication_days", "days", "fixing"], rows),
    ].filter(Boolean),
  };
}

// ---------------------------------------------------------------- corrections
async function viewCorrections() {
  const rows = (await notices()).map(n => {
    const reason = t(n.reason) + (n.forced ? ` (${t("forced")})` : "") + (n.cause ? `: ${n.cause}` : "");
    return el("tr", { data: { reason: n.reason, code: n.index } },
      td(utcMinute(n.published_at)), el("td", {}, indexLink(n.index)),
      el("td", {}, link(explainHash(n.index, n.date), n.date)), num(number(n.old_value)),
      num(n.new_value === null ? t("withdrawn") : number(n.new_value)),
      num(n.new_value === null ? "–" : signed(n.new_value - n.old_value)), td(reason));
  });
  return {
    name: "corrections",
    nodes: [
      el("h2", {}, t("corrections_title")), el("p", { class: "sub" }, t("corrections_note")),
      table("corrections", ["published", "index", "date", "old", "new", "change", "reason"],
        rows.length ? rows : [emptyRow("no_notices")]),
    ],
  };
}
