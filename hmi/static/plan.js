// The day-ahead plan panel: GET /api/plan once a minute; shown only when the site plans
// ([plan] enabled = true; otherwise the answer is {"enabled": false} and it stays hidden).
import { api, el, fmtPower, fmtMoney } from "/static/common.js";

const REFRESH_MS = 60_000;

function hhmm(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function render(doc) {
  const box = document.getElementById("plan");
  box.replaceChildren();
  const p = doc.plan;
  const head = el("div", { class: "plan-head" },
    el("span", { text: `Tank target ${doc.tank_target_c == null ? "–" : doc.tank_target_c.toFixed(1) + " °C"}` }),
    el("span", { text: `Buy floor ${doc.plan_min_w ? fmtPower(doc.plan_min_w) : "none"}` }),
    el("span", { text: p ? `Expected value ${fmtMoney(p.expected_value, doc.currency, true)}` : "No plan yet" }),
    el("span", { class: "muted", text: `${doc.replans} re-plans` }));
  box.append(head);
  const h = doc.hindsight;
  if (h) {
    // The last whole UTC day against the best possible in hindsight (the plan LP on what
    // was measured): the plan's regret.
    box.append(el("div", { class: "plan-hindsight muted", text:
      `${h.start.slice(0, 10)} (UTC day): ${fmtMoney(h.realised_value, doc.currency, true)} realised, ` +
      `${fmtMoney(h.best_value, doc.currency, true)} possible in hindsight — regret ` +
      `${fmtMoney(h.regret, doc.currency)}` }));
  }
  if (!p) return;
  const rows = p.slots.map((s) => el("tr", { class: s.import_w > 20 && s.miner_w > 20 ? "buy" : "" },
    el("td", { text: hhmm(s.start) }),
    el("td", { text: fmtPower(s.miner_w || 0) }),
    el("td", { text: s.tank_c == null ? "–" : s.tank_c.toFixed(1) }),
    el("td", { text: s.import_price == null ? "–" : s.import_price.toFixed(3) }),
    el("td", { text: s.export_price == null ? "–" : s.export_price.toFixed(3) })));
  const table = el("table", { class: "plan" },
    el("thead", {}, el("tr", {}, el("th", { text: "From" }), el("th", { text: "Miners" }),
      el("th", { text: "Tank °C" }), el("th", { text: "Import /kWh" }),
      el("th", { text: "Export /kWh" }))),
    el("tbody", {}, ...rows));
  box.append(el("div", { class: "plan-scroll" }, table));
}

async function load() {
  try {
    const doc = await api("GET", "/api/plan");
    document.getElementById("p-plan").hidden = !doc.enabled;
    document.getElementById("tab-plan").hidden = !doc.enabled;
    if (doc.enabled) render(doc);
  } catch (e) { /* keep what is shown; the next refresh tries again */ }
}

load();
setInterval(load, REFRESH_MS);
