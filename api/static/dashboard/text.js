"use strict";
// Every word the dashboard shows, in English and Chinese.
const TEXT = {
  en: {
    title: "Beijing Bulk Commodity Price Index", subtitle: "Composite and sector indices, base = 1000",
    api: "API documentation", api_redoc: "API reference (ReDoc)", language: "中文",
    nav_overview: "Overview", nav_calendar: "Publication calendar", nav_corrections: "Corrections",
    nav_methodology: "Methodology",
    picker: "Add a commodity:", none: "(none)", code: "Code", index: "Index", commodity: "Commodity",
    date: "Date", value: "Value", status: "Status", downloads: "Downloads", explain: "explain",
    explanation: "Explanation",
    live_on: "● live", live_off: "○ not live", empty: "No published values yet", loading: "Loading…",
    provisional: "provisional", final: "final", restated: "restated", withdrawn: "withdrawn",
    review: "review",
    indices_caption: "Indices: latest values", change_1d: "1-day change", change_pct: "% change",
    assessments_title: "Commodities: latest assessments", price: "Price", unit: "Unit",
    currency: "Currency", change: "Change", previous: "Previous", assessed_by: "How assessed",
    suspended: "suspended", no_value: "no value",
    notices: "Correction notices", published: "Published (UTC)", old: "Old value",
    new: "New value", reason: "Reason", forced: "forced", no_notices: "None",
    late_trade: "late trade", trade_cancelled: "trade cancelled", trade_amended: "trade amended",
    rebalance: "rebalance", methodology_change: "methodology change",
    calendar_correction: "calendar correction", operator: "operator",
    versions_title: "Methodology versions", version: "Version", effective: "Effective from",
    state: "State", changes: "Changes", in_force_today: "in force today", in_force: "in force as dated",
    held: "held until adopted", consultations_title: "Open consultations", opens: "Opens",
    closes: "Closes", backtest: "Backtest on the published history", open: "open for comment",
    closed: "closed, awaiting decision", no_consultations: "None", document: "document",
    document_heading: "Document",
    backtest_line: (code, d, n, te) => `${code}: ${d} of ${n} days differ, tracking error ${te}`,
    // The index page
    kind_composite: "composite index", kind_sector: "sector index", kind_commodity: "commodity index",
    latest: "Latest value", methodology_version: "Methodology version", base_date: "Base date",
    base_value: "Base value", period: "Period", since: "From", period_1d: "1 day",
    period_1m: "1 month", period_1y: "1 year", changes_title: "Changes",
    constituents_title: "Constituents and weights", weight: "Weight",
    recent_title: "Recent values", download_csv: "Download CSV", download_parquet: "Parquet",
    unknown_index: code => `No index ${code}.`,
    // The explain page
    explain_title: (code, day) => `Why ${code} is what it is on ${day}`,
    explain_summary: (code, day, value, status, vintage, version) =>
      `${code} on ${day} is ${value}: ${status}, vintage ${vintage}, under methodology ${version}.`,
    published_at: "Published",
    formula_title: "How the value is computed",
    formula_laspeyres: (ref, refDay, n) =>
      `Chain-linked Laspeyres: the value is the reference value ${ref} (the index on ${refDay}) ` +
      `times the sum, over the ${n} constituents, of weight × level ÷ reference level. ` +
      "A level is a commodity's index level: its assessment ÷ its base-date assessment × 1000.",
    formula_commodity: (basePrice, baseDay) =>
      `Commodity index: the day's assessment ÷ the assessment on the base date ${baseDay}` +
      `${basePrice ? ` (${basePrice})` : ""} × 1000.`,
    level: "Level", reference_level: "Reference level", contribution: "Contribution",
    excluded_count: (n, rule) => `${n} ${rule}`,
    trades: "Trades", exchanges: "Exchanges", excluded: "Excluded", check_line: sum =>
      `Sum of the contributions: ${sum}.`,
    fallback_none: "VWAP of the day's trades",
    fallback_related: "from a related commodity's price and the usual spread",
    fallback_stale: "carried forward: too few qualifying trades",
    fallback_suspended: "suspended: no price", fallback_missing: "no assessment: last level kept",
    rules_title: "The rules applied (methodology in words)",
    rule_window: (cutoff, zone, grace) =>
      `Each publication day's window runs from the previous publication day's cut-off to the ` +
      `day's cut-off at ${cutoff} (${zone})` +
      (grace ? `; trades received up to ${grace} s after the cut-off count.` : "."),
    rule_lot: "Trades below the commodity's minimum lot are excluded.",
    rule_affiliated: "Trades between members of one group (affiliated) are excluded.",
    rule_mad: (k, floor) =>
      `Outliers: a trade more than ${k} scaled median absolute deviations from the median price ` +
      `is excluded${floor ? ` (the spread is at least ${floor} of the median)` : ""}.`,
    rule_sigma: k =>
      `Outliers: a trade more than ${k} volume-weighted standard deviations from the ` +
      "volume-weighted mean is excluded.",
    rule_vwap: "The assessment is the volume-weighted average price of the qualifying trades.",
    rule_sufficiency: (trades, exchanges, share, participant) =>
      `A window is sufficient with at least ${trades} trades on at least ${exchanges} exchanges, ` +
      `no exchange above ${share} of the volume` +
      (participant ? ` and no participant above ${participant}` : "") +
      ", and the commodity's minimum volume.",
    rule_fallback: days =>
      "Otherwise the price comes from a related commodity, or the last price is carried " +
      `forward for at most ${days} publication days, after which the assessment is suspended.`,
    min_lot: "Minimum lot", min_volume: "Minimum volume",
    rule_min_lot: "below the minimum lot", rule_outlier_mad: "outlier (median rule)",
    rule_outlier_sigma: "outlier (k-sigma rule)", rule_affiliated_short: "affiliated",
    rule_insufficient_data: "window insufficient",
    insufficient: failed => `insufficient: ${failed.join(", ")}`,
    // The calendar page
    calendar_title: year => `Publication calendar ${year}`,
    calendar_note: "Publication days are the mainland exchanges' trading days; the fixing is published at the time shown (Beijing time).",
    provisional_year: "Provisional: this year's holidays follow the statutory rule until the State Council's notice is known.",
    month: "Month", publication_days: "Publication days", days: "Days", fixing: "Fixing",
    previous_year: "← previous year", next_year: "next year →",
    corrections_title: "Correction notices", corrections_note: "Every restated or withdrawn value, newest first.",
    methodology_title: "Methodology",
  },
  zh: {
    title: "北京大宗商品价格指数", subtitle: "综合指数与板块指数，基点 = 1000",
    api: "接口文档", api_redoc: "接口参考（ReDoc）", language: "English",
    nav_overview: "概览", nav_calendar: "发布日历", nav_corrections: "修正公告", nav_methodology: "编制方案",
    picker: "添加商品：", none: "（无）", code: "代码", index: "指数", commodity: "商品",
    date: "日期", value: "数值", status: "状态", downloads: "下载", explain: "解释", explanation: "解释",
    live_on: "● 实时", live_off: "○ 未连接", empty: "暂无已发布数值", loading: "加载中…",
    provisional: "临时值", final: "定盘值", restated: "修正值", withdrawn: "撤回", review: "待复核",
    indices_caption: "指数：最新数值", change_1d: "日涨跌", change_pct: "涨跌幅",
    assessments_title: "商品：最新评估价", price: "价格", unit: "单位", currency: "币种",
    change: "涨跌", previous: "前值", assessed_by: "评估方式", suspended: "暂停", no_value: "无数值",
    notices: "修正公告", published: "发布时间（UTC）", old: "原值", new: "新值",
    reason: "原因", forced: "强制", no_notices: "无",
    late_trade: "迟报成交", trade_cancelled: "成交撤销", trade_amended: "成交更正",
    rebalance: "权重调整", methodology_change: "方法变更", calendar_correction: "日历更正",
    operator: "运营人员",
    versions_title: "编制方案版本", version: "版本", effective: "生效日期", state: "状态",
    changes: "变更内容", in_force_today: "今日适用", in_force: "按生效日期适用", held: "暂缓，待采纳",
    consultations_title: "公开征求意见", opens: "开始日期", closes: "截止日期",
    backtest: "历史回测（对比已发布数值）", open: "征求意见中", closed: "已截止，待决定",
    no_consultations: "无", document: "文本", document_heading: "文本",
    backtest_line: (code, d, n, te) => `${code}：${n} 天中 ${d} 天不同，跟踪误差 ${te}`,
    kind_composite: "综合指数", kind_sector: "板块指数", kind_commodity: "单品种指数",
    latest: "最新数值", methodology_version: "编制方案版本", base_date: "基期", base_value: "基点",
    period: "区间", since: "起始", period_1d: "1 日", period_1m: "1 个月", period_1y: "1 年",
    changes_title: "涨跌", constituents_title: "成分与权重", weight: "权重",
    recent_title: "近期数值", download_csv: "下载 CSV", download_parquet: "Parquet",
    unknown_index: code => `没有指数 ${code}。`,
    explain_title: (code, day) => `${code} 在 ${day} 的数值依据`,
    explain_summary: (code, day, value, status, vintage, version) =>
      `${code} 在 ${day} 的数值为 ${value}：${status}，第 ${vintage} 版，编制方案 ${version}。`,
    published_at: "发布时间",
    formula_title: "计算方法",
    formula_laspeyres: (ref, refDay, n) =>
      `链式拉氏指数：数值 = 参考值 ${ref}（${refDay} 的指数）× 对 ${n} 个成分求和（权重 × 水平 ÷ 参考水平）。` +
      "水平即单品种指数：评估价 ÷ 基期评估价 × 1000。",
    formula_commodity: (basePrice, baseDay) =>
      `单品种指数：当日评估价 ÷ 基期 ${baseDay} 的评估价${basePrice ? `（${basePrice}）` : ""} × 1000。`,
    level: "水平", reference_level: "参考水平", contribution: "贡献", trades: "成交笔数",
    exchanges: "交易所数", excluded: "剔除", check_line: sum => `各成分贡献之和：${sum}。`,
    excluded_count: (n, rule) => `${rule} ${n} 笔`,
    fallback_none: "当日合格成交的成交量加权均价", fallback_related: "按关联品种价格及价差推算",
    fallback_stale: "沿用前值：合格成交不足", fallback_suspended: "暂停：无价格",
    fallback_missing: "无评估价：沿用上一水平",
    rules_title: "适用规则（编制方案要点）",
    rule_window: (cutoff, zone, grace) =>
      `每个发布日的评估窗口自上一发布日截止时间起，至当日 ${cutoff}（${zone}）止` +
      (grace ? `；截止后 ${grace} 秒内收到的成交计入当日。` : "。"),
    rule_lot: "低于最小成交量的成交剔除。",
    rule_affiliated: "同一集团成员之间的关联成交剔除。",
    rule_mad: (k, floor) =>
      `异常值：偏离中位数超过 ${k} 倍标准化绝对中位差的成交剔除${floor ? `（离散度不低于中位数的 ${floor}）` : ""}。`,
    rule_sigma: k => `异常值：偏离成交量加权均值超过 ${k} 倍加权标准差的成交剔除。`,
    rule_vwap: "评估价为合格成交的成交量加权平均价。",
    rule_sufficiency: (trades, exchanges, share, participant) =>
      `数据充足：至少 ${trades} 笔成交、来自至少 ${exchanges} 家交易所，单一交易所成交量占比不超过 ${share}` +
      (participant ? `，单一交易方不超过 ${participant}` : "") + "，并达到该品种的最小成交量。",
    rule_fallback: days => `否则按关联品种推算，或沿用前值至多 ${days} 个发布日，其后暂停评估。`,
    min_lot: "最小成交量", min_volume: "最小总成交量",
    rule_min_lot: "低于最小成交量", rule_outlier_mad: "异常值（中位数规则）",
    rule_outlier_sigma: "异常值（k 倍标准差规则）", rule_affiliated_short: "关联成交",
    rule_insufficient_data: "窗口数据不足",
    insufficient: failed => `数据不足：${failed.join("、")}`,
    calendar_title: year => `${year} 年发布日历`,
    calendar_note: "发布日为内地交易所交易日；定盘值于所示时间（北京时间）发布。",
    provisional_year: "暂定：在国务院公布放假安排前，本年节假日按法定规则推定。",
    month: "月份", publication_days: "发布日数", days: "日期", fixing: "定盘时间",
    previous_year: "← 上一年", next_year: "下一年 →",
    corrections_title: "修正公告", corrections_note: "所有被修正或撤回的数值，最新的在前。",
    methodology_title: "编制方案",
  },
};
