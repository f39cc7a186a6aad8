// The wall page: live state over Server-Sent Events, the power-flow diagram, the tank, the
// miners, revenue, the 24 h chart and the one-tap mode buttons (PIN when needed).
// Reconnects by itself: EventSource retries after a dropped connection, and when the
// browser gives up (an HTTP error while the Pi restarts) a new one is opened with backoff.

import { ApiError, api, applyTheme, auth, el, fmtInt, fmtMoney, fmtPower, refreshSession,
         toggleTheme } from "./common.js";

const $ = (id) => document.getElementById(id);
const view = {
  state: null, bootId: null, lastMsg: 0, points: [], connected: false, downSince: null,
  es: null, retryMs: 1000, pending: null, tab: "now", lastTouch: Date.now(), revenue: null,
  chart: "day", days: null, daysError: null, cursor: null, geom: null,
};

// ---- time ------------------------------------------------------------------------------

function tz() { return (view.state && view.state.timezone) || undefined; }

function fmtTime(date, opts) {
  try { return new Intl.DateTimeFormat(undefined, { timeZone: tz(), ...opts }).format(date); }
  catch (e) { return new Intl.DateTimeFormat(undefined, opts).format(date); }
}

function tickClock() {
  const at = view.state && view.state.at ? new Date(view.state.at) : new Date();
  $("clock").textContent = fmtTime(at, { weekday: "short", day: "numeric", month: "short",
                                         hour: "2-digit", minute: "2-digit" });
}

// ---- live connection -------------------------------------------------------------------

function staleLimitMs() {
  const tick = view.state ? view.state.tick_s : 1;
  return Math.max(15000, tick * 3000 + 5000);
}

function setConn(kind, text) {
  const c = $("conn");
  c.className = `conn conn-${kind}`;
  $("conn-text").textContent = text;
}

function watchdog() {
  const now = Date.now();
  const banner = $("banner");
  if (!view.connected) {
    setConn("down", "Reconnecting…");
    if (view.downSince && now - view.downSince > 3000) {
      banner.textContent = "No connection to the controller. Trying again… The values shown may be old.";
      banner.hidden = false;
      document.body.classList.add("is-stale");
    }
  } else if (view.state && view.state.available && now - view.lastMsg > staleLimitMs()) {
    setConn("wait", "No news");
    // How long, not since when: the tablet's clock need not be the site's (a replayed demo).
    const s = Math.round((now - view.lastMsg) / 1000);
    const ago = s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
    banner.textContent = `The controller has sent nothing for ${ago}. The values shown may be old.`;
    banner.hidden = false;
    document.body.classList.add("is-stale");
  } else {
    setConn(view.state && view.state.available ? "live" : "wait",
            view.state && view.state.available ? "Live" : "Starting…");
    banner.hidden = true;
    document.body.classList.remove("is-stale");
  }
  tickClock();
  if (view.tab !== "now" && Date.now() - view.lastTouch > 120000) showTab("now");
}

function connect() {
  if (view.es) view.es.close();
  const es = new EventSource("/api/events");
  view.es = es;
  es.addEventListener("open", () => {
    view.connected = true;
    view.downSince = null;
    view.retryMs = 1000;
  });
  es.addEventListener("hello", (ev) => {
    const { boot_id } = JSON.parse(ev.data);
    if (view.bootId !== null && view.bootId !== boot_id) onRestart();
    view.bootId = boot_id;
  });
  es.addEventListener("state", (ev) => {
    view.connected = true;
    view.lastMsg = Date.now();
    render(JSON.parse(ev.data));
  });
  es.addEventListener("point", (ev) => {
    const p = JSON.parse(ev.data);
    if (!view.points.length || p.t > view.points[view.points.length - 1].t) {
      view.points.push(p);
      const cut = p.t - 24 * 3600;
      while (view.points.length && view.points[0].t <= cut) view.points.shift();
      renderChart();
    }
  });
  es.addEventListener("error", () => {
    view.connected = false;
    if (view.downSince === null) view.downSince = Date.now();
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. an error page while the Pi restarts): try again ourselves.
      setTimeout(connect, view.retryMs);
      view.retryMs = Math.min(view.retryMs * 2, 10000);
    }
  });
}

function onRestart() {
  loadHistory();
  loadRevenue();
  loadDays();
  refreshSession().catch(() => {});
}

// ---- rendering -------------------------------------------------------------------------

const MODE_WORDS = { grid: "Solar surplus", heating: "Heat first", island: "Island" };

function render(s) {
  view.state = s;
  $("site-name").textContent = s.site_name;
  $("status").textContent = s.status;
  renderModes(s);
  renderAlarms(s);
  renderRequests(s);
  if (s.flows) renderFlow(s.flows);
  renderTank(s.tank);
  renderMiners(s.miners);
  renderBitcoin(s.bitcoin);
  tickClock();
  watchdog();
}

function renderModes(s) {
  for (const b of document.querySelectorAll(".mode[data-mode]")) {
    const m = b.dataset.mode;
    b.hidden = !s.modes_available.includes(m);
    b.setAttribute("aria-pressed", String(s.mode === m && !s.paused));
    if (view.pending && view.pending.mode === m && s.mode === m) view.pending = null;
  }
  const pause = document.querySelector(".mode[data-action=pause]");
  pause.setAttribute("aria-pressed", String(s.paused));
  $("pause-label").textContent = s.paused ? "Resume" : "Pause";
  $("ic-pause").hidden = s.paused;
  $("ic-resume").hidden = !s.paused;
  if (view.pending && view.pending.paused !== undefined && view.pending.paused === s.paused) {
    view.pending = null;
  }
  for (const b of document.querySelectorAll(".mode")) {
    const busy = view.pending && ((view.pending.mode && b.dataset.mode === view.pending.mode)
      || (view.pending.paused !== undefined && b.dataset.action === "pause"));
    b.classList.toggle("busy", Boolean(busy));
  }
}

function renderAlarms(s) {
  const box = $("alarms");
  box.replaceChildren();
  // A cap the grid operator asked for is said in full words below (renderRequests).
  const capAsked = (s.grid_requests || []).some((r) => r.active && r.kind === "reduce");
  const shown = s.alarms.filter((a) => !(a.code === "hold" && s.paused)
                                       && !(a.code === "dr_cap" && capAsked));
  for (const a of shown.slice(0, 2)) {
    box.append(el("div", { class: `alarm sev-${a.severity}`, "data-code": a.code },
                  el("b", { text: a.title }), el("span", { text: a.detail })));
  }
  if (shown.length > 2) box.append(el("div", { class: "alarm sev-info", text: `and ${shown.length - 2} more` }));
}

// Demand response: what the grid operator (or an aggregator) asked of the miners, in force
// first, then what is planned. A site without DR has none, and the strip stays hidden.
// The small display has room for one line (the colour says use less / use more).
const SMALL = window.matchMedia("(max-width: 1099px), (max-height: 699px)");

function renderRequests(s) {
  const box = $("requests");
  const reqs = s.grid_requests || [];
  box.replaceChildren();
  box.hidden = reqs.length === 0;
  const shown = reqs.slice(0, SMALL.matches ? 1 : 2);
  shown.forEach((r, i) => {
    const rest = i === shown.length - 1 ? reqs.length - shown.length : 0;
    // The event reference "(OpenADR event e-17)." is not broken at the id's hyphen.
    const cut = r.detail.lastIndexOf(" (");
    const words = cut > 0 ? r.detail.slice(0, cut + 1) : r.detail;
    const ref = cut > 0 ? r.detail.slice(cut + 1) : "";
    box.append(el("div", { class: `request req-${r.kind}${r.active ? " active" : ""}`,
                           "data-event": r.event_id, "data-source": r.source },
                  el("b", { text: r.title }),
                  el("span", {}, words, ref ? el("span", { class: "ref", text: ref }) : null,
                     rest > 0 ? el("small", { class: "more", text: ` (and ${rest} more)` })
                       : null)));
  });
}

function flowLine(id, watts, reverse) {
  const line = $(id);
  const on = watts !== null && Math.abs(watts) >= 20;
  line.classList.toggle("on", on);
  line.classList.toggle("rev", Boolean(reverse));
  if (on) {
    const d = Math.max(0.35, 2.4 - 0.55 * Math.log10(Math.max(Math.abs(watts), 50) / 50));
    line.style.animationDuration = `${d.toFixed(2)}s`;
  }
}

function renderFlow(f) {
  const stale = new Set(f.stale);
  $("v-pv").textContent = fmtPower(f.pv_w);
  flowLine("fl-pv", f.pv_w, false);
  $("n-pv").classList.toggle("stale", stale.has("pv_w"));

  $("v-grid").textContent = fmtPower(f.grid_w);
  const exporting = f.grid_w !== null && f.grid_w <= -20;
  $("l-grid").textContent = f.grid_w === null ? "Grid" : exporting ? "Selling to grid"
    : f.grid_w >= 20 ? "Buying from grid" : "Grid";
  $("n-grid").classList.toggle("exporting", exporting);
  $("n-grid").classList.toggle("stale", stale.has("grid_w"));
  flowLine("fl-grid", f.grid_w, exporting);

  const hasBat = f.battery_w !== null || f.soc_pct !== null;
  for (const id of ["n-bat", "ln-bat", "fl-bat"]) $(id).style.display = hasBat ? "" : "none";
  if (hasBat) {
    const soc = f.soc_pct === null ? "" : ` ${Math.round(f.soc_pct)} %`;
    $("v-bat").textContent = fmtPower(f.battery_w);
    $("l-bat").textContent = (f.battery_w >= 20 ? "Charging" : f.battery_w <= -20 ? "Discharging"
      : "Battery") + soc;
    const fill = $("bat-fill");
    const h = 16 * Math.max(0, Math.min(100, f.soc_pct || 0)) / 100;
    fill.setAttribute("y", String(20 - h));
    fill.setAttribute("height", String(h));
    flowLine("fl-bat", f.battery_w, f.battery_w !== null && f.battery_w < 0);
    $("n-bat").classList.toggle("stale", stale.has("battery_w") || stale.has("soc_pct"));
  }

  $("v-house").textContent = fmtPower(f.load_w);
  flowLine("fl-house", f.load_w, false);
  $("v-miners").textContent = fmtPower(f.miners_w);
  flowLine("fl-miners", f.miners_w, false);
  const heat = f.heat_to_tank_w;
  $("v-heat").textContent = heat !== null && heat >= 20 ? `${fmtPower(heat)} → tank` : "";
}

function tankWords(t) {
  if (t.temp_c === null) return "No reading";
  if (t.temp_c < t.min_c) return "Cold: the backup heater helps";
  if (t.temp_c >= t.max_c - 1) return "Full of heat";
  if (Math.abs(t.temp_c - t.target_c) <= 1) return "At its target";
  return t.temp_c < t.target_c ? "Warming up" : "Storing extra heat";
}

function renderTank(t) {
  const box = $("tank");
  box.hidden = !t;
  if (!t) return;
  const lo = t.min_c - 10;
  const hi = t.max_c + 5;
  const pos = (c) => `${(100 * Math.max(0, Math.min(1, (c - lo) / (hi - lo)))).toFixed(1)}%`;
  $("tank-fill").style.height = t.temp_c === null ? "0" : `calc(${pos(t.temp_c)} - 12px)`;
  const band = $("tank-band");
  band.style.bottom = pos(t.min_c);
  band.style.top = `calc(100% - ${pos(t.max_c)})`;
  for (const [id, c, word] of [["mark-max", t.max_c, "max"], ["mark-target", t.target_c, "target"],
                               ["mark-min", t.min_c, "min"]]) {
    const m = $(id);
    m.style.bottom = pos(c);
    m.firstElementChild.textContent = `${word} ${Math.round(c)}°`;
  }
  $("tank-temp").textContent = t.temp_c === null ? "–" : `${Math.round(t.temp_c)} °C`;
  $("tank-words").textContent = tankWords(t) + (t.target_overridden ? " (target set by hand)" : "");
}

const STATE_WORDS = { mining: "Mining", starting: "Starting", paused: "Paused", off: "Off",
                      no_data: "No data" };

function fmtHash(ths) {
  if (ths === null || ths === undefined) return "–";
  if (ths === 0) return "0 TH/s";
  if (ths < 1) return `${Math.round(ths * 1000)} GH/s`;
  return `${ths.toFixed(ths < 10 ? 2 : 1)} TH/s`;
}

function renderMiners(miners) {
  const box = $("miners");
  box.replaceChildren();
  if (!miners.length) {
    box.append(el("p", { class: "muted", text: "No miner data yet." }));
    return;
  }
  for (const m of miners) {
    const manual = m.manual_w === null ? "" : m.manual_w === 0 ? " · kept off" : ` · held at ${fmtPower(m.manual_w)}`;
    const pct = m.power_w === null ? 0 : Math.max(0, Math.min(100, 100 * m.power_w / m.max_power_w));
    box.append(el("div", { class: "miner", "data-miner": m.name },
      el("div", {}, el("div", { class: "name", text: m.name }),
         el("div", { class: `state st-${m.state}`, text: STATE_WORDS[m.state] + manual })),
      el("div", {}, el("div", { class: "big", text: fmtPower(m.power_w) }),
         el("div", { class: "unit", text: "power" })),
      el("div", {}, el("div", { class: "big", text: fmtHash(m.hashrate_ths) }),
         el("div", { class: "unit", text: "hash rate" })),
      el("div", {}, el("div", { class: "big", text: m.temp_c === null ? "–" : `${Math.round(m.temp_c)}°` }),
         el("div", { class: "unit", text: "temp." })),
      el("div", { class: "bar" }, el("i", { style: `width:${pct.toFixed(0)}%` })),
      m.why ? el("div", { class: "why", text: m.why }) : null));
  }
}

// ---- revenue ---------------------------------------------------------------------------

function periodBox(title, p, currency) {
  const net = Number(p.net);
  return el("div", { class: "period", "data-period": p.label },
    el("h3", { text: title }),
    el("div", { class: `net ${net > 0 ? "pos" : net < 0 ? "neg" : ""}`, text: fmtMoney(p.net, currency, true) }),
    el("dl", {},
      el("dt", { text: "Bitcoin" }), el("dd", {}, `${fmtInt(p.sats)} ${p.sats === 1 ? "sat" : "sats"}`,
                                        el("small", { text: `worth ${fmtMoney(p.btc_value, currency)}` })),
      el("dt", { text: "Heat" }), el("dd", {}, fmtMoney(p.heat_value, currency),
                                     el("small", { text: `${Number(p.heat_kwh).toFixed(1)} kWh` })),
      el("dt", { text: "Power" }), el("dd", {}, fmtMoney(p.power_cost, currency),
                                      el("small", { text: "grid & solar used" }))));
}

function renderMoney(r) {
  const box = $("money");
  box.replaceChildren();
  if (!r.available) {
    box.append(el("p", { class: "unavailable", text: `Not available: ${r.reason || "no ledger"}` }));
    return;
  }
  box.append(periodBox("Today", r.today, r.currency), periodBox("This month", r.month, r.currency),
             el("p", { class: "note", text: "Total = Bitcoin + heat − power cost" }),
             btcTermsLine());
  if (r.pool && r.pool.length) box.append(poolTable(r.pool));
}

// Pool reconciliation (docs/ledger.md): what the pool paid against what the hashes were
// expected to earn after its fee, per month; the difference is its luck (and extra fees).
function poolTable(months) {
  const row = (m) => el("tr", {},
    el("th", { scope: "row", text: monthWords(m.month) }),
    el("td", { text: fmtInt(m.expected_sats) }),
    el("td", { text: fmtInt(m.paid_sats) }),
    el("td", { text: m.ratio === null ? "–" : `${(Number(m.ratio) * 100).toFixed(1)} %` }));
  return el("table", { class: "pool", id: "pool" },
    el("caption", { text: "Pool payouts (sats): paid against expected after its fee" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Month" }),
                               el("th", { scope: "col", text: "Expected" }),
                               el("th", { scope: "col", text: "Paid" }),
                               el("th", { scope: "col", text: "Paid / expected" }))),
    el("tbody", {}, ...months.map(row)));
}

function monthWords(ym) {
  const [y, m] = ym.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { timeZone: "UTC", month: "short", year: "numeric" })
    .format(new Date(Date.UTC(y, m - 1, 1)));
}

// One element, kept across renderMoney's rebuilds; renderBitcoin fills it every tick.
let btcTerms = null;
function btcTermsLine() {
  if (!btcTerms) btcTerms = el("p", { id: "btc-terms", class: "btc-terms", "aria-live": "polite" });
  renderBitcoin(view.state ? view.state.bitcoin : null);
  return btcTerms;
}

// Where the bitcoin price the sats are valued at comes from (live, pushed, or the fixed
// fallback and why): under the money view.
function renderBitcoin(b) {
  const box = btcTerms;
  if (!box) return;
  box.className = `btc-terms${b && b.source === "config" ? " fallback" : ""}`;
  box.textContent = !b ? "" : `Bitcoin ${fmtMoney(b.btc_price, view.state.currency)}. ${b.words}`;
}

async function loadRevenue() {
  try {
    view.revenue = await api("GET", "/api/revenue");
    renderMoney(view.revenue);
  } catch (e) {
    if (!view.revenue) renderMoney({ available: false, reason: e.words });
  }
}

// ---- charts ----------------------------------------------------------------------------
// Hand-built SVG (no chart library to ship to the Pi): the last 24 h of power, and per day
// of the last month the money (Bitcoin, heat, power cost, net) and the solar surplus the
// miners captured vs what went to the grid. A touch (or the mouse) on a chart shows the
// values at that point in the line above it.

const NS = "http://www.w3.org/2000/svg";
const CW = 1000;
const CH = 300;
const CHARTS = {
  day: { title: "Last 24 hours", legend: [["pv", "Solar"], ["load", "House"], ["miners", "Miners"], ["price", "Grid price"]] },
  money: { title: "Money per day", legend: [["btc", "Bitcoin"], ["heat", "Heat"], ["cost", "Power cost"], ["net", "Total"]] },
  solar: { title: "Solar surplus per day", legend: [["captured", "Taken by the miners"], ["exported", "Sent to the grid"]] },
};

function svgAdd(svg, tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  svg.append(e);
  return e;
}

async function loadHistory() {
  try {
    const h = await api("GET", "/api/history");
    view.points = h.points;
    renderChart();
  } catch (e) { /* the live feed fills it */ }
}

function siteDate(t) {
  // YYYY-MM-DD of an instant in the site's time zone (the ledger's days are local days)
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: tz(), year: "numeric",
                                                   month: "2-digit", day: "2-digit" })
    .formatToParts(t);
  const get = (k) => parts.find((x) => x.type === k).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

async function loadDays() {
  // The last 31 days: this month's report and the one before. Only while a per-day chart
  // is shown, and only when the site keeps a ledger (no request bound to fail).
  if (!view.state || !view.state.at || view.chart === "day") return;
  if (view.revenue && !view.revenue.available) {
    view.days = null;
    view.daysError = view.revenue.reason || "no ledger";
    renderChart();
    return;
  }
  const today = siteDate(new Date(view.state.at));
  const [y, m] = today.split("-").map(Number);
  const prev = m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, "0")}`;
  const months = [prev, today.slice(0, 7)];
  try {
    const reports = await Promise.all(months.map((mo) => api("GET", `/api/ledger/month?month=${mo}`)));
    const rows = reports.flatMap((r) => r.rows);
    const byDay = new Map(rows.map((r) => [r.label, r]));
    const days = [];
    const t0 = Date.UTC(y, m - 1, Number(today.slice(8, 10)));
    for (let i = 30; i >= 0; i -= 1) {
      const d = new Date(t0 - i * 86400000).toISOString().slice(0, 10);
      days.push({ day: d, row: byDay.get(d) || null });
    }
    while (days.length && !days[0].row) days.shift();  // a new site: its first day first
    view.days = { days, currency: reports[0].currency, today };
    view.daysError = null;
  } catch (e) {
    view.days = null;
    view.daysError = e.words || "not available";
  }
  if (view.chart !== "day") renderChart();
}

function pathOf(points, key, x, y, area) {
  let d = "";
  let open = false;
  let lastX = 0;
  for (const p of points) {
    const v = p[key];
    if (v === null || v === undefined) {
      if (open && area) d += `L${lastX},${y(0)}Z`;
      open = false;
      continue;
    }
    const px = x(p.t).toFixed(1);
    const py = y(v).toFixed(1);
    if (!open) {
      d += area ? `M${px},${y(0)}L${px},${py}` : `M${px},${py}`;
      open = true;
    } else {
      d += `L${px},${py}`;
    }
    lastX = px;
  }
  if (open && area) d += `L${lastX},${y(0)}Z`;
  return d;
}

function chartFrame() {
  const svg = $("chart");
  svg.replaceChildren();
  $("chart-axis").replaceChildren();
  $("chart-y").replaceChildren();
  $("chart-scale").textContent = "";
  const c = CHARTS[view.chart];
  $("chart-title").textContent = c.title;
  $("chart-legend").replaceChildren(...c.legend.map(([k, w]) => el("span", { class: `lg lg-${k}`, text: w })));
  for (const b of document.querySelectorAll("[data-chart]")) {
    b.setAttribute("aria-pressed", String(b.dataset.chart === view.chart));
  }
  $("chart").setAttribute("aria-label", `Chart: ${c.title.toLowerCase()}`);
  return svg;
}

function yLabel(text, frac) {
  $("chart-y").append(el("span", { style: `top:${(100 * frac).toFixed(1)}%`, text }));
}

function renderChart() {
  if (view.chart === "day") renderDay();
  else renderDays();
  showReadout(view.cursor);
}

function renderDay() {
  const svg = chartFrame();
  const axis = $("chart-axis");
  const pts = view.points;
  view.geom = null;
  if (pts.length < 2) {
    axis.append(el("span", { class: "yl", text: "The chart fills in as the day goes on." }));
    return;
  }
  const end = pts[pts.length - 1].t;
  const start = end - 24 * 3600;
  let top = 1000;
  for (const p of pts) top = Math.max(top, p.pv_w || 0, p.load_w || 0, p.miners_w || 0);
  const stepKw = top > 12000 ? 5 : top > 5000 ? 2 : 1;
  const maxW = Math.ceil(top / 1000 / stepKw) * stepKw * 1000;
  const prices = pts.map((p) => p.import_price).filter((v) => v !== null && v !== undefined);
  const pMax = Math.max(0.01, ...prices) * 1.15;
  const pMin = Math.min(0, ...prices);
  const x = (t) => ((t - start) / (end - start)) * CW;
  const y = (w) => CH - (w / maxW) * (CH - 4);
  const yp = (v) => CH - ((v - pMin) / (pMax - pMin)) * (CH - 4);
  for (let kw = stepKw; kw * 1000 <= maxW; kw += stepKw) {
    svgAdd(svg, "path", { class: "grid", d: `M0,${y(kw * 1000)}H${CW}` });
    yLabel(`${kw} kW`, y(kw * 1000) / CH);
  }
  svgAdd(svg, "path", { class: "c-pv", d: pathOf(pts, "pv_w", x, y, true) });
  svgAdd(svg, "path", { class: "c-miners", d: pathOf(pts, "miners_w", x, y, true) });
  svgAdd(svg, "path", { class: "c-load", d: pathOf(pts, "load_w", x, y, false) });
  if (prices.length) svgAdd(svg, "path", { class: "c-price", d: pathOf(pts, "import_price", x, yp, false) });
  for (let t = Math.ceil(start / (3 * 3600)) * 3 * 3600; t <= end; t += 3 * 3600) {
    const left = (100 * (t - start)) / (end - start);
    if (left < 4 || left > 96) continue;
    axis.append(el("span", { style: `left:${left.toFixed(1)}%`,
                             text: fmtTime(new Date(t * 1000), { hour: "numeric" }) }));
  }
  $("chart-scale").textContent = prices.length && view.state
    ? `price: top of chart = ${pMax.toFixed(2)} ${view.state.currency}/kWh` : "";
  view.geom = {
    at: (frac) => {
      const t = start + frac * (end - start);
      let best = null;
      for (const p of pts) if (!best || Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
      return best ? { x: x(best.t), item: best } : null;
    },
  };
}

function dayWords(d) {
  const [y, m, dd] = d.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { timeZone: "UTC", weekday: "short", day: "numeric",
                                              month: "short" }).format(new Date(Date.UTC(y, m - 1, dd)));
}

// The ledger's money words (docs/ledger.md): net = btc_value + heat_value − power_cost.
// `cost` is drawn below the axis, so it is the power cost negated.
function moneyOf(r) {
  const btc = Number(r.btc_value);
  const heat = Number(r.heat_value);
  const net = Number(r.net);
  return { btc, heat, net, cost: -Number(r.power_cost) };
}

function renderDays() {
  const svg = chartFrame();
  const axis = $("chart-axis");
  view.geom = null;
  const d = view.days;
  if (!d || !d.days.some((x) => x.row)) {
    axis.append(el("span", { class: "yl", text: view.daysError ? `Not available: ${view.daysError}`
      : "The days fill in as the ledger records them." }));
    return;
  }
  const n = d.days.length;
  const slot = CW / Math.max(n, 7);
  const bw = slot * 0.7;
  const xs = (i) => i * slot + (slot - bw) / 2;
  let lo = 0;
  let hi = 0;
  const vals = d.days.map((x) => {
    if (!x.row) return null;
    if (view.chart === "money") {
      const v = moneyOf(x.row);
      hi = Math.max(hi, v.btc + v.heat, v.net);
      lo = Math.min(lo, v.cost, v.net);
      return v;
    }
    const v = { captured: Number(x.row.miner_from_pv_kwh), exported: Number(x.row.export_kwh) };
    hi = Math.max(hi, v.captured + v.exported);
    return v;
  });
  if (hi - lo <= 0) hi = 1;
  const pad = (hi - lo) * 0.06;
  hi += pad;
  lo = lo < 0 ? lo - pad : 0;
  const y = (v) => CH - ((v - lo) / (hi - lo)) * CH;
  const rect = (cls, i, a, b) => svgAdd(svg, "rect", {
    class: cls, x: xs(i).toFixed(1), width: bw.toFixed(1),
    y: Math.min(y(a), y(b)).toFixed(1), height: Math.abs(y(a) - y(b)).toFixed(1) });
  svgAdd(svg, "path", { class: "grid zero", d: `M0,${y(0).toFixed(1)}H${CW}` });
  if (view.chart === "money") {
    yLabel(fmtMoney(String(hi - pad), d.currency), y(hi - pad) / CH);
    if (lo < 0) yLabel(fmtMoney(String(lo + pad), d.currency), Math.min(0.9, y(lo + pad) / CH));
  } else {
    yLabel(`${(hi - pad).toFixed(0)} kWh`, y(hi - pad) / CH);
  }
  vals.forEach((v, i) => {
    if (!v) return;
    if (view.chart === "money") {
      rect("b-btc", i, 0, v.btc);
      rect("b-heat", i, v.btc, v.btc + v.heat);
      if (v.cost < 0) rect("b-cost", i, v.cost, 0);
      svgAdd(svg, "path", { class: "b-net", d: `M${xs(i).toFixed(1)},${y(v.net).toFixed(1)}h${bw.toFixed(1)}` });
    } else {
      rect("b-captured", i, 0, v.captured);
      rect("b-exported", i, v.captured, v.captured + v.exported);
    }
  });
  const every = n > 16 ? 7 : n > 8 ? 2 : 1;
  d.days.forEach((x, i) => {
    if ((n - 1 - i) % every) return;
    axis.append(el("span", { style: `left:${((100 * (xs(i) + bw / 2)) / CW).toFixed(1)}%`,
                             text: x.day === d.today ? "today" : dayWords(x.day) }));
  });
  view.geom = {
    at: (frac) => {
      const i = Math.min(n - 1, Math.max(0, Math.floor((frac * CW) / slot)));
      return i < n && d.days[i].row ? { x: xs(i) + bw / 2, item: { day: d.days[i].day, v: vals[i] } } : null;
    },
  };
}

function readoutText(item) {
  const cur = (view.days && view.days.currency) || (view.state && view.state.currency) || "EUR";
  if (view.chart === "day") {
    const p = item;
    const price = p.import_price === null || p.import_price === undefined ? ""
      : ` · price ${p.import_price.toFixed(2)} ${cur}/kWh`;
    return `${fmtTime(new Date(p.t * 1000), { hour: "2-digit", minute: "2-digit" })} · Solar ${fmtPower(p.pv_w)}`
      + ` · House ${fmtPower(p.load_w)} · Miners ${fmtPower(p.miners_w)}${price}`;
  }
  const { day, v } = item;
  const when = day === view.days.today ? "Today" : dayWords(day);
  if (view.chart === "money") {
    return `${when} · Bitcoin ${fmtMoney(String(v.btc), cur)} · Heat ${fmtMoney(String(v.heat), cur)}`
      + ` · Power cost ${fmtMoney(String(-v.cost), cur)} · Total ${fmtMoney(String(v.net), cur, true)}`;
  }
  return `${when} · Taken by the miners ${v.captured.toFixed(1)} kWh · Sent to the grid ${v.exported.toFixed(1)} kWh`;
}

function showReadout(frac) {
  const svg = $("chart");
  const old = svg.querySelector(".cursor");
  if (old) old.remove();
  const out = $("chart-readout");
  const hit = frac === null || frac === undefined || !view.geom ? null : view.geom.at(frac);
  if (!hit) {
    out.textContent = "Touch the chart for its values.";
    out.classList.add("muted");
    return;
  }
  svgAdd(svg, "path", { class: "cursor", d: `M${hit.x.toFixed(1)},0V${CH}` });
  out.textContent = readoutText(hit.item);
  out.classList.remove("muted");
}

function wireChart() {
  const svg = $("chart");
  const at = (ev) => {
    const r = svg.getBoundingClientRect();
    view.cursor = Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width));
    showReadout(view.cursor);
  };
  svg.addEventListener("pointerdown", at);
  svg.addEventListener("pointermove", (ev) => { if (ev.pointerType === "mouse" || ev.buttons) at(ev); });
  for (const b of document.querySelectorAll("[data-chart]")) {
    b.addEventListener("click", () => {
      view.chart = b.dataset.chart;
      view.cursor = null;
      renderChart();
      if (view.chart !== "day") loadDays();
    });
  }
}

// ---- commands, PIN ---------------------------------------------------------------------

function toast(text, error = false) {
  const t = $("toast");
  t.textContent = text;
  t.className = `toast${error ? " err" : ""}`;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 6000 : 3000);
}

let pinResolve = null;
let pinDigits = "";

function pinShow(message) {
  pinDigits = "";
  $("pin-dots").textContent = "";
  $("pin-error").textContent = message || "";
  const d = $("pin");
  if (!d.open) d.showModal();
  return new Promise((resolve) => { pinResolve = resolve; });
}

function pinClose(ok) {
  const d = $("pin");
  if (d.open) d.close();
  if (pinResolve) pinResolve(ok);
  pinResolve = null;
}

async function pinSubmit() {
  if (pinDigits.length < 4) {
    $("pin-error").textContent = "The PIN has at least 4 digits";
    return;
  }
  try {
    const s = await api("POST", "/api/auth/pin", { pin: pinDigits });
    auth.role = s.role;
    auth.csrf = s.csrf_token;
    pinClose(true);
  } catch (e) {
    pinDigits = "";
    $("pin-dots").textContent = "";
    $("pin-error").textContent = e.status === 401 ? "Wrong PIN. Try again."
      : e.status === 429 ? `Too many tries. Wait ${Math.ceil((e.retryAfter || 60) / 60)} min.`
        : e.words;
  }
}

function pinKey(k) {
  if (k === "ok") { pinSubmit(); return; }
  if (k === "back") pinDigits = pinDigits.slice(0, -1);
  else if (pinDigits.length < 8) pinDigits += k;
  $("pin-dots").textContent = "●".repeat(pinDigits.length);
  $("pin-error").textContent = "";
}

async function command(path, body, pending) {
  view.pending = pending;
  if (view.state) renderModes(view.state);
  try {
    const r = await api("POST", path, body);
    toast(r.message);
    setTimeout(() => { view.pending = null; if (view.state) renderModes(view.state); }, 6000);
  } catch (e) {
    view.pending = null;
    if (view.state) renderModes(view.state);
    if (e.status === 401 || (e.status === 403 && auth.role === "none")) {
      if (!auth.pinConfigured) await refreshSession().catch(() => {});
      if (auth.pinConfigured) {
        if (await pinShow()) return command(path, body, pending);
        return undefined;
      }
      toast("Changing this needs a PIN. Ask your installer to set one.", true);
    } else {
      toast(e.words, true);
    }
  }
  return undefined;
}

function wire() {
  for (const b of document.querySelectorAll(".mode[data-mode]")) {
    b.addEventListener("click", () => {
      const mode = b.dataset.mode;
      const s = view.state;
      if (s && s.paused) {
        // One tap: leave the pause and run in the chosen mode.
        command("/api/commands/pause", { paused: false }, { paused: false })
          .then(() => command("/api/commands/mode", { mode }, { mode }));
        return;
      }
      command("/api/commands/mode", { mode }, { mode });
    });
  }
  document.querySelector(".mode[data-action=pause]").addEventListener("click", () => {
    const paused = !(view.state && view.state.paused);
    command("/api/commands/pause", { paused }, { paused });
  });
  $("theme").addEventListener("click", toggleTheme);
  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
  }
  for (const b of document.querySelectorAll(".pad button")) {
    b.addEventListener("click", () => pinKey(b.dataset.key));
  }
  $("pin-cancel").addEventListener("click", () => pinClose(false));
  $("pin").addEventListener("cancel", () => pinClose(false));
  wireChart();
  document.addEventListener("pointerdown", () => { view.lastTouch = Date.now(); });
}

function showTab(name) {
  view.tab = name;
  for (const p of document.querySelectorAll(".page")) p.classList.toggle("shown", p.dataset.page === name);
  for (const b of document.querySelectorAll(".tabs button")) {
    if (b.dataset.tab === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  if (name === "chart") renderChart();
}

async function main() {
  applyTheme();
  wire();
  showTab("now");
  try { await refreshSession(); } catch (e) { /* offline: the feed retries */ }
  if (!auth.publicView && auth.role === "none") {
    // A private HMI: this panel must be logged in before it may show anything.
    $("banner").textContent = auth.pinConfigured ? "Enter the PIN to show this panel."
      : "This panel is not logged in. Ask your installer.";
    $("banner").hidden = false;
    if (auth.pinConfigured) {
      $("pin-title").textContent = "Enter the PIN to show this panel";
      while (!(await pinShow())) { /* the panel is useless without it */ }
      $("pin-title").textContent = "Enter the PIN to change the mode";
    }
  }
  connect();
  loadHistory();
  loadRevenue();
  setInterval(watchdog, 1000);
  setInterval(loadRevenue, 30000);
  setInterval(loadDays, 300000);
}

main();
window.hearth = view;  // for the browser tests and the curious
export { ApiError };
