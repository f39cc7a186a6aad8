// The fleet page: polls the JSON API and fills three tables. No framework, no CDN.
"use strict";

const kw = (w) => (w === null || w === undefined ? "–" : (w / 1000).toFixed(2) + " kW");

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function siteRow(s) {
  const tr = document.createElement("tr");
  tr.dataset.site = s.site_id;
  if (!s.online) tr.className = "offline";
  const name = cell(tr, "", "text");
  if (s.hmi_url && /^https?:\/\//.test(s.hmi_url)) {
    const a = document.createElement("a");
    a.href = s.hmi_url;
    a.textContent = s.site_id;
    a.rel = "noopener";
    name.appendChild(a);
  } else {
    name.textContent = s.site_id;
  }
  const st = cell(tr, "", "text status");
  const dot = document.createElement("span");
  dot.className = s.online ? "dot on" : "dot";
  st.appendChild(dot);
  st.appendChild(document.createTextNode(s.online ? "online" : "offline"));
  cell(tr, kw(s.grid_power_w));
  cell(tr, kw(s.pv_power_w));
  cell(tr, kw(s.miner_power_w));
  cell(tr, kw(s.flex_shed_w));
  cell(tr, kw(s.flex_add_w));
  // net (docs/mqtt.md); an older site sends only `revenue`, its BTC + heat value.
  const t = s.today;
  cell(tr, !t ? "–" : t.net != null ? `${t.net} ${t.currency} net`
    : t.revenue != null ? `${t.revenue} ${t.currency} (BTC + heat)` : "–");
  cell(tr, s.alarms.join("; "), "text alarm");
  return tr;
}

async function getJson(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function refresh() {
  try {
    const data = await getJson("/api/sites");
    const body = document.querySelector("#sites tbody");
    body.replaceChildren(...data.sites.map(siteRow));
    document.getElementById("summary").textContent =
      `${data.online} of ${data.sites.length} sites online · miners ${kw(data.total.miner_power_w)}` +
      ` · can shed ${kw(data.total.flex_shed_w)} · can add ${kw(data.total.flex_add_w)}`;
    const dr = await getJson("/api/dr");
    document.querySelector("#dr tbody").replaceChildren(...dr.events.map((e) => {
      const tr = document.createElement("tr");
      cell(tr, e.event_id, "text");
      cell(tr, e.kind, "text");
      cell(tr, kw(e.requested_w));
      cell(tr, kw(e.delivered_w));
      cell(tr, String(Object.keys(e.sites).length));
      cell(tr, e.status, "text");
      return tr;
    }));
    const money = await getJson("/api/money?days=7");
    document.querySelector("#money tbody").replaceChildren(...money.days.map((d) => {
      const tr = document.createElement("tr");
      cell(tr, d.day, "text");
      cell(tr, d.site_id, "text");
      cell(tr, String(d.intervals));
      const services = (Number(d.availability_pay) + Number(d.activation_pay)).toFixed(2);
      for (const v of [d.btc_value, d.heat_value, services, d.grid_cost, d.forgone_export,
                       d.net]) cell(tr, Number(v).toFixed(2));
      cell(tr, String(d.expected_sats));
      return tr;
    }));
  } catch (err) {
    document.getElementById("summary").textContent = `Cannot reach the fleet API: ${err.message}`;
  }
}

refresh();
setInterval(refresh, 5000);
