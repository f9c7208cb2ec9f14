"use strict";
// The explain page: why an index value is what it is, from /v1/indices/{code}/explain,
// with the methodology's rules in words.

function excludedText(rationale) {
  const counts = (rationale && rationale.counts_by_rule) || {};
  const parts = Object.entries(counts).filter(([rule, n]) => rule !== "used" && n > 0)
    .map(([rule, n]) => t("excluded_count")(n, t(`rule_${rule === "affiliated" ? "affiliated_short" : rule}`)));
  return parts.length ? parts.join("; ") : (rationale && "excluded_count" in rationale ? "0" : "–");
}
function assessedText(member, assessment) {
  const fallback = (assessment && assessment.fallback) || member.fallback || "missing";
  let text = t(`fallback_${fallback}`);
  const sufficiency = assessment && assessment.rationale && assessment.rationale.sufficiency;
  if (sufficiency && !sufficiency.met && sufficiency.failed.length) text += ` (${t("insufficient")(sufficiency.failed)})`;
  return text;
}
function rulesInWords(parameters) {
  if (!parameters) return [];
  const words = [t("rule_window")(parameters.cutoff.slice(0, 5), parameters.timezone, parameters.reporting_grace_seconds)];
  words.push(t("rule_lot"));
  if (parameters.exclude_affiliated) words.push(t("rule_affiliated"));
  words.push(parameters.exclusion === "mad"
    ? t("rule_mad")(number(parameters.k, 0), parameters.scale_floor ? percent(parameters.scale_floor, 0, false) : null)
    : t("rule_sigma")(number(parameters.k, 0)));
  words.push(t("rule_vwap"));
  words.push(t("rule_sufficiency")(parameters.min_trades, parameters.min_exchanges,
    percent(parameters.max_exchange_share, 0, false),
    parameters.max_participant_share ? percent(parameters.max_participant_share, 0, false) : null));
  words.push(t("rule_fallback")(parameters.stale_days));
  return words;
}

async function viewExplain(code, day) {
  const x = await getJSON(`${indexURL(code)}/explain?date=${day}`);
  const commodity = c => state.commodities.find(item => item.code === c) || { unit: "", currency: "" };
  const commodityIndex = x.formula === "commodity_index";
  let sum = 0;
  let parameters = null;
  const rows = x.constituents.map(member => {
    const a = member.assessment;
    const info = commodity(member.code);
    const contribution = commodityIndex ? x.value
      : x.reference_value * member.weight * member.level / member.reference_level;
    sum += contribution;
    const p = a && a.rationale && a.rationale.parameters;
    if (p && !parameters) parameters = p;
    const unit = `${info.currency}/${info.unit}`;
    return el("tr", { data: { code: member.code } },
      el("td", {}, indexLink(member.code)), num(percent(member.weight, PRECISION.weight, false)),
      num(number(member.level), { field: "level" }), num(number(member.reference_level), { field: "reference-level" }),
      num(number(contribution), { field: "contribution" }),
      num(a && a.price !== null ? `${number(a.price, PRECISION.price)} ${unit}` : "–", { field: "price" }),
      num(a ? String(a.trades) : "–"), num(a ? String(a.exchanges) : "–"),
      td(assessedText(member, a), null, { fallback: (a && a.fallback) || member.fallback || "missing" }),
      td(excludedText(a && a.rationale)),
      num(p ? `${number(p.min_lot, 0)} ${info.unit}` : "–"), num(p ? `${number(p.min_volume, 0)} ${info.unit}` : "–"));
  });
  const formula = commodityIndex
    ? t("formula_commodity")(
      x.constituents[0] && x.constituents[0].base ? number(x.constituents[0].base.price, PRECISION.price) : null,
      longDate(x.base_date))
    : t("formula_laspeyres")(number(x.reference_value), x.reference_date ? longDate(x.reference_date) : "–",
      x.constituents.length);
  return {
    name: "explain",
    nodes: [
      el("h2", { id: "explain-title" }, t("explain_title")(code, longDate(x.date))),
      el("p", { id: "explain-summary" },
        t("explain_summary")(code, longDate(x.date), number(x.value), t(x.status), x.vintage, x.methodology_version)),
      el("p", { class: "sub" }, `${t("published_at")}: ${utcMinute(x.published_at)} UTC · `,
        link(`${indexURL(code)}/explain?date=${x.date}`, "JSON"), " · ", link(`#/index/${encodeURIComponent(code)}`, code)),
      el("h3", {}, t("formula_title")),
      el("p", { id: "formula", data: { formula: x.formula || "" } }, formula),
      table("explain-constituents",
        ["commodity", "weight", "level", "reference_level", "contribution", "price", "trades", "exchanges",
          "assessed_by", "excluded", "min_lot", "min_volume"], rows),
      commodityIndex ? null : el("p", { id: "check" }, t("check_line")(number(sum))),
      el("h3", {}, t("rules_title")),
      el("ul", { id: "rules" }, ...rulesInWords(parameters).map(line => el("li", {}, line))),
    ].filter(Boolean),
  };
}
