// Installer pages: first-start setup, login, the site config as a form generated from the
// JSON schema (validated by the server's pydantic models; each problem is shown next to
// its field), resident PIN, device tests, ledger export, API tokens.

import { ApiError, api, applyTheme, auth, el, refreshSession } from "./common.js";

const $ = (id) => document.getElementById(id);
let schema = null;
let original = null;

function msg(id, text, ok = true) {
  const m = $(id);
  m.textContent = text;
  m.className = `msg ${ok ? "ok" : "err"}`;
}

// ---- who am I ------------------------------------------------------------------------

async function showAuth() {
  await refreshSession();
  $("setup").hidden = !auth.setupRequired;
  $("login").hidden = auth.setupRequired || auth.role === "installer";
  $("tools").hidden = auth.role !== "installer";
  $("logout").hidden = auth.role === "none";
  $("who").textContent = auth.role === "installer" ? "Logged in as installer"
    : auth.role === "resident" ? "Resident login (installer tools need the installer password)"
      : "Not logged in";
  if (auth.role === "installer") await loadTools();
}

async function loadTools() {
  await Promise.all([loadConfig(), loadDevices(), loadTokens()]);
  $("pin-state").textContent = auth.pinConfigured ? "A PIN is set." : "No PIN is set yet.";
  exportLink();
}

// ---- schema form -------------------------------------------------------------------------

function resolve(s) {
  if (s && s.$ref) return schema.$defs[s.$ref.split("/").pop()];
  return s;
}

// The schema of a value, with "may be null" split off: {s, nullable}.
function unwrap(s) {
  if (s && s.anyOf) {
    const nonNull = s.anyOf.filter((x) => x.type !== "null");
    const nullable = nonNull.length < s.anyOf.length;
    if (nonNull.length === 1) return { s: { ...resolve(nonNull[0]), ...pick(s) }, nullable };
    // number | string (Decimal): a text field
    if (nonNull.every((x) => x.type === "number" || x.type === "string")) {
      return { s: { type: "decimal", ...pick(s) }, nullable };
    }
    return { s: { type: "json", ...pick(s) }, nullable };
  }
  return { s: { ...resolve(s), ...pick(s) }, nullable: false };
}

function pick(s) {
  const out = {};
  for (const k of ["description", "default", "title"]) if (s[k] !== undefined) out[k] = s[k];
  return out;
}

function kindOf(s) {
  if (s.enum) return "enum";
  if (s.type === "object" && s.properties) return "object";
  if (s.type === "object") return "json";
  if (s.type === "array") {
    const it = resolve(s.items || {});
    if (it && it.type === "object") return "objects";
    return "list";
  }
  return s.type || "json";
}

// Field names carry their unit (tank_max_c, grid_import_limit_w): say it the human way.
const UNITS = [["_w_per_k", "W/K"], ["_w_per_s", "W/s"], ["_j_per_th", "J/TH"],
  ["_per_kwh", "per kWh"], ["_per_kw_h", "per kW·h"], ["_kwh", "kWh"], ["_kw", "kW"],
  ["_pct", "%"], ["_deg", "°"], ["_ths", "TH/s"], ["_min", "min"], ["_days", "days"],
  ["_w", "W"], ["_c", "°C"], ["_s", "s"], ["_h", "h"], ["_v", "V"], ["_a", "A"], ["_l", "L"]];
const WORDS = { pv: "PV", mqtt: "MQTT", hmi: "HMI", id: "ID", btc: "BTC", soc: "SoC",
                dr: "DR", tls: "TLS", url: "URL", pid: "PID", rtu: "RTU", tcp: "TCP",
                j: "J", th: "TH" };

function label(name) {
  let base = name;
  let unit = "";
  for (const [suffix, u] of UNITS) {
    if (base.endsWith(suffix) && base.length > suffix.length) {
      base = base.slice(0, -suffix.length);
      unit = u;
      break;
    }
  }
  const words = base.split("_").map((w) => WORDS[w] || w);
  const text = words.join(" ");
  const cap = text.charAt(0).toUpperCase() + text.slice(1);
  return unit ? `${cap} (${unit})` : cap;
}

function fieldHelp(s) {
  const bits = [];
  if (s.description) bits.push(s.description);
  if (s.default !== undefined && s.default !== null && s.default !== "" && typeof s.default !== "object") {
    bits.push(`default ${s.default}`);
  }
  return bits.join(" · ");
}

// Inputs carry data-path (the TOML path the server uses in its messages) and data-kind.
let controls = new Map();  // path -> input, for putting the server's messages in place

function input(path, name, s, value, required) {
  const kind = kindOf(s);
  const id = `f-${path.replace(/[^A-Za-z0-9]/g, "_")}`;
  const wrap = el("div", { class: kind === "json" ? "field wide" : "field" });
  let ctl;
  if (kind === "boolean") {
    ctl = el("input", { id, type: "checkbox" });
    ctl.checked = value === undefined ? Boolean(s.default) : Boolean(value);
    wrap.append(el("label", { for: id }, ctl, " ", label(name)));
  } else {
    wrap.append(el("label", { for: id, text: label(name) + (required ? " *" : "") }));
    if (kind === "enum") {
      ctl = el("select", { id });
      if (!required) {
        ctl.append(el("option", { value: "", text: s.default !== undefined && s.default !== null
          ? `(default: ${s.default})` : "(not set)" }));
      }
      for (const v of s.enum) ctl.append(el("option", { value: JSON.stringify(v), text: String(v) }));
      if (value !== undefined && value !== null) ctl.value = JSON.stringify(value);
    } else if (kind === "json") {
      ctl = el("textarea", { id, spellcheck: "false" });
      ctl.value = value === undefined ? "" : JSON.stringify(value, null, 1);
    } else {
      ctl = el("input", { id, autocomplete: "off", spellcheck: "false",
                          inputmode: ["number", "integer"].includes(kind) ? "decimal" : null });
      if (kind === "list") ctl.value = Array.isArray(value) ? value.join(", ") : "";
      else ctl.value = value === undefined || value === null ? "" : String(value);
      if (s.default !== undefined && s.default !== null && typeof s.default !== "object") {
        ctl.placeholder = String(s.default);
      }
    }
    wrap.append(ctl);
  }
  ctl.dataset.path = path;
  ctl.dataset.kind = kind;
  ctl.dataset.present = value === undefined ? "0" : "1";
  if (kind === "list") ctl.dataset.itemKind = kindOf(resolve(s.items || {}));
  const touched = () => { ctl.dataset.dirty = "1"; clearError(ctl); };
  ctl.addEventListener("input", touched);
  ctl.addEventListener("change", touched);
  const help = fieldHelp(s);
  if (help) wrap.append(el("div", { class: "field-help", text: help }));
  return wrap;
}

// Every node of the form: { el, collect() } where collect() gives the value to write, or
// undefined to leave the key out (then the default applies).
function fieldNode(path, name, s, value, required) {
  const wrap = input(path, name, s, value, required);
  const ctl = wrap.querySelector("[data-path]");
  controls.set(path, ctl);
  return {
    el: wrap,
    collect: () => {
      // Untouched fields that were not in the file stay out of it.
      if (ctl.dataset.present !== "1" && ctl.dataset.dirty !== "1") return undefined;
      return parseValue(ctl);
    },
  };
}

function childNode(path, name, raw, value, required, depth) {
  const { s, nullable } = unwrap(raw);
  const kind = kindOf(s);
  if (kind === "object") {
    // Only a section that may be absent (battery, tank, mqtt, ...) gets an on/off box; one
    // with defaults is shown as is and written only when something in it is set.
    return objectNode(path, name, s, value, { optional: nullable, depth });
  }
  if (kind === "objects") return listNode(path, name, s, value || [], depth);
  return fieldNode(path, name, s, value, required);
}

function objectNode(path, name, s, value, { optional, depth }) {
  const req = new Set(s.required || []);
  let box;
  let body;
  let present = null;
  if (depth === 0) {
    box = el("div", {});
    body = box;
  } else {
    box = el(depth === 1 ? "details" : "fieldset", { class: "section", "data-section": path });
    const head = el(depth === 1 ? "summary" : "legend", {});
    box.append(head);
    body = el("div", {});
    if (optional) {
      present = el("input", { type: "checkbox", "data-present-for": path });
      present.checked = value !== undefined && value !== null;
      present.addEventListener("change", () => { body.hidden = !present.checked; });
      if (depth === 1) {
        // Nothing interactive inside <summary> (it is a button itself): the switch is the
        // first thing in the opened section.
        head.append(label(name));
        box.append(el("label", { class: "use" }, present, `Use ${label(name)} on this site`));
      } else {
        head.append(el("label", {}, present, ` ${label(name)}`));
      }
      body.hidden = !present.checked;
    } else {
      head.append(label(name));
    }
    if (s.description) body.append(el("div", { class: "field-help", text: s.description }));
    box.append(body);
    if (depth === 1 && ["site", "tank"].includes(path)) box.open = true;
  }
  const grid = el("div", { class: "fields" });
  body.append(grid);
  const children = [];
  for (const [k, raw] of Object.entries(s.properties || {})) {
    const p = path ? `${path}.${k}` : k;
    const child = childNode(p, k, raw, value ? value[k] : undefined, req.has(k), depth + 1);
    children.push([k, child]);
    (child.el.classList.contains("field") ? grid : body).append(child.el);
  }
  return {
    el: box,
    collect: () => {
      if (present && !present.checked) return undefined;
      const out = {};
      for (const [k, c] of children) {
        const v = c.collect();
        if (v !== undefined) out[k] = v;
      }
      // A section the file did not have and nobody touched stays out of it.
      if (!present && value === undefined && depth > 0 && !Object.keys(out).length) return undefined;
      return out;
    },
  };
}

function listNode(path, name, s, items, depth) {
  const itemSchema = resolve(s.items);
  const one = name.replace(/s$/, "");
  const box = el("details", { class: "section", "data-section": path });
  const summary = el("summary", {});
  const holder = el("div", {});
  box.append(summary, holder);
  let nodes = [];
  const render = (values) => {
    for (const k of [...controls.keys()]) if (k.startsWith(`${path}[`)) controls.delete(k);
    holder.replaceChildren();
    nodes = values.map((v, i) => {
      const n = objectNode(`${path}[${i}]`, `${one} ${i + 1}`, itemSchema, v, { optional: false, depth: 2 });
      n.el.querySelector("legend").textContent = v && v.name ? `${v.name}` : `${one} ${i + 1}`;
      n.el.append(el("button", { type: "button", class: "btn danger", text: `Remove this ${one}`,
        onclick: () => { const cur = nodes.map((x) => x.collect() || {}); cur.splice(i, 1); render(cur); } }));
      holder.append(n.el);
      return n;
    });
    summary.textContent = `${label(name)} (${values.length})`;
  };
  render(items);
  box.append(el("button", { type: "button", class: "btn", text: `Add a ${one}`,
    onclick: () => { const cur = nodes.map((x) => x.collect() || {}); cur.push({}); render(cur); box.open = true; } }));
  return { el: box, collect: () => nodes.map((n) => n.collect() || {}) };
}

let root = null;

function buildForm(doc) {
  controls = new Map();
  root = objectNode("", "site", schema, doc, { optional: false, depth: 0 });
  $("config-fields").replaceChildren(root.el);
}

// ---- collecting the document back ------------------------------------------------------------

function parseValue(ctl) {
  const kind = ctl.dataset.kind;
  if (kind === "boolean") return ctl.checked;
  const text = ctl.value.trim();
  if (text === "") return undefined;
  if (kind === "enum") return JSON.parse(ctl.value);
  if (kind === "number" || kind === "integer") {
    // Anything that is not plainly a number goes as written: the server says what is wrong.
    return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) ? Number(text) : text;
  }
  if (kind === "json") {
    try { return JSON.parse(text); } catch (e) { return text; }
  }
  if (kind === "list") {
    return text.split(",").map((x) => x.trim()).filter((x) => x !== "").map((x) => {
      const n = Number(x);
      return ctl.dataset.itemKind === "string" || Number.isNaN(n) ? x : n;
    });
  }
  return text;  // string, or a decimal kept exactly as written
}

function collect() {
  return root.collect();
}

// ---- problems next to their fields -----------------------------------------------------------

function clearError(ctl) {
  ctl.classList.remove("bad");
  const next = ctl.parentElement.querySelector(".field-error");
  if (next) next.remove();
}

// The field a message is about, or the nearest field above it ("miners[0].driver.port" is
// shown at the driver table).
function controlFor(where) {
  let path = where;
  while (path) {
    if (controls.has(path)) return controls.get(path);
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    if (cut <= 0) return null;
    path = path.slice(0, cut);
  }
  return null;
}

function showProblems(problems) {
  for (const c of document.querySelectorAll("#config-fields .bad")) clearError(c);
  const box = $("config-problems");
  box.replaceChildren();
  if (!problems.length) return;
  const list = el("ul", {});
  let first = null;
  for (const p of problems) {
    list.append(el("li", { text: p.where ? `${p.where}: ${p.reason}` : p.reason }));
    const ctl = controlFor(p.where);
    if (ctl) {
      ctl.classList.add("bad");
      ctl.parentElement.append(el("div", { class: "field-error", text: p.reason }));
      for (let d = ctl.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
      first = first || ctl;
    }
  }
  box.append(el("div", { class: "problems", role: "alert" },
                el("b", { text: `${problems.length} problem${problems.length > 1 ? "s" : ""} — nothing was saved` }), list));
  if (first) first.focus();
}

async function loadConfig() {
  try {
    [schema, original] = await Promise.all([api("GET", "/api/config/schema"), api("GET", "/api/config")]);
  } catch (e) {
    $("config-fields").replaceChildren(el("p", { class: "msg err", text: e.words }));
    return;
  }
  $("config-path").textContent = `${original.path} (version ${original.version})`;
  buildForm(original.config);
  showProblems([]);
  $("config-msg").textContent = "";
}

async function submitConfig(save) {
  const doc = collect();
  try {
    const r = save ? await api("PUT", "/api/config", { config: doc })
      : await api("POST", "/api/config/validate", { config: doc });
    showProblems([]);
    msg("config-msg", r.message);
    if (save) {
      original = await api("GET", "/api/config");
      $("config-path").textContent = `${original.path} (version ${original.version})`;
    }
  } catch (e) {
    if (e.status === 422) {
      showProblems(e.problems);
      msg("config-msg", "Not saved: fix the fields marked in red.", false);
    } else {
      msg("config-msg", e.words, false);
    }
  }
}

// ---- devices -----------------------------------------------------------------------------

function showResult(obj) {
  const pre = $("dev-result");
  pre.hidden = false;
  pre.textContent = typeof obj === "string" ? obj : JSON.stringify(obj, null, 2);
}

async function loadDevices() {
  let d;
  try { d = await api("GET", "/api/installer/devices"); } catch (e) { showResult(e.words); return; }
  const dev = $("dev-table").tBodies[0];
  dev.replaceChildren();
  if (!d.devices.length) dev.append(el("tr", {}, el("td", { class: "muted", text: "No Modbus devices in the site file." })));
  for (const x of d.devices) {
    dev.append(el("tr", {},
      el("td", { text: x.name }), el("td", { text: `${x.role} · ${x.map}` }), el("td", { text: x.address }),
      el("td", {}, el("button", { type: "button", class: "btn", "data-read": x.name, text: "Read now",
        onclick: async (ev) => {
          ev.target.disabled = true;
          showResult(`Reading ${x.name}…`);
          try {
            const r = await api("POST", `/api/installer/devices/${encodeURIComponent(x.name)}/read`);
            showResult(`${r.ok ? "OK" : "FAILED"}: ${x.name} (${r.map} at ${r.endpoint}) in ${r.took_s} s\n` +
              (r.error ? `error: ${r.error}\n` : "") + Object.entries(r.values).map(([k, v]) => `${k} = ${v}`).join("\n") +
              (Object.keys(r.missing).length ? `\nnot available: ${JSON.stringify(r.missing)}` : ""));
          } catch (e) { showResult(e.words); }
          ev.target.disabled = false;
        } }))));
  }
  const mt = $("miner-table").tBodies[0];
  mt.replaceChildren();
  for (const m of d.miners) {
    const w = el("input", { class: "narrow", inputmode: "decimal", "aria-label": `Power for ${m.name} in W`,
                            placeholder: `${m.min_power_w}–${m.max_power_w} W` });
    const send = async (path, body, words) => {
      showResult(`${words}…`);
      try { showResult(await api("POST", path, body)); } catch (e) { showResult(e.words); }
    };
    mt.append(el("tr", {},
      el("td", { text: m.name }), el("td", { text: `${m.kind} · ${m.api || "?"}` }), el("td", {}, w),
      el("td", {}, el("div", { class: "row" },
        el("button", { type: "button", class: "btn", "data-test-miner": m.name, text: "Test power",
          onclick: () => {
            if (w.value.trim() === "" || Number.isNaN(Number(w.value))) {
              showResult(`Enter a power for ${m.name} in W first (0 pauses it).`);
              return;
            }
            send(`/api/installer/miners/${encodeURIComponent(m.name)}/power`, { power_w: Number(w.value) }, `Setting ${m.name}`);
          } }),
        el("button", { type: "button", class: "btn", text: "Hold power",
          onclick: () => {
            if (w.value.trim() === "" || Number.isNaN(Number(w.value))) {
              showResult(`Enter the power to hold ${m.name} at, in W (0 keeps it off).`);
              return;
            }
            send("/api/commands/miner-power", { miner: m.name, power_w: Number(w.value) }, `Holding ${m.name}`);
          } }),
        el("button", { type: "button", class: "btn", text: "Automatic",
          onclick: () => send("/api/commands/miner-power", { miner: m.name, power_w: null }, `${m.name} automatic`) })))));
  }
}

// ---- tokens, PIN, password, export ---------------------------------------------------------

async function loadTokens() {
  let list;
  try { list = await api("GET", "/api/tokens"); } catch (e) { msg("token-msg", e.words, false); return; }
  const tb = $("token-table").tBodies[0];
  tb.replaceChildren();
  if (!list.length) tb.append(el("tr", {}, el("td", { class: "muted", text: "No tokens yet." })));
  for (const t of list) {
    tb.append(el("tr", {}, el("td", { text: t.name }), el("td", { text: t.role }),
      el("td", { text: `created ${t.created_at}` }), el("td", { text: t.last_used_at ? `used ${t.last_used_at}` : "never used" }),
      el("td", {}, el("button", { type: "button", class: "btn danger", text: "Revoke",
        onclick: async () => { await api("DELETE", `/api/tokens/${t.id}`); loadTokens(); } }))));
  }
}

function exportLink() {
  const q = new URLSearchParams();
  if ($("exp-from").value) q.set("from", $("exp-from").value);
  if ($("exp-to").value) q.set("to", $("exp-to").value);
  $("exp-link").href = `/api/ledger/export.csv${q.toString() ? `?${q}` : ""}`;
}

function wire() {
  $("setup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if ($("setup-pw").value !== $("setup-pw2").value) { msg("setup-msg", "The two passwords differ.", false); return; }
    try {
      await api("POST", "/api/auth/setup", { setup_code: $("setup-code").value, password: $("setup-pw").value });
      await showAuth();
    } catch (e) { msg("setup-msg", e.words, false); }
  });
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/auth/login", { password: $("login-pw").value });
      $("login-pw").value = "";
      await showAuth();
    } catch (e) { msg("login-msg", e.status === 401 ? "Wrong password." : e.words, false); }
  });
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/api/auth/logout"); } catch (e) { /* already out */ }
    await showAuth();
  });
  $("config-form").addEventListener("submit", (ev) => { ev.preventDefault(); submitConfig(true); });
  $("config-check").addEventListener("click", () => submitConfig(false));
  $("config-reload").addEventListener("click", loadConfig);
  $("pin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("PUT", "/api/auth/pin", { pin: $("pin-new").value });
      $("pin-new").value = "";
      msg("pin-msg", r.message);
      await refreshSession();
      $("pin-state").textContent = "A PIN is set.";
    } catch (e) { msg("pin-msg", e.words, false); }
  });
  $("pin-remove").addEventListener("click", async () => {
    try {
      const r = await api("PUT", "/api/auth/pin", { pin: null });
      msg("pin-msg", r.message);
      $("pin-state").textContent = "No PIN is set yet.";
    } catch (e) { msg("pin-msg", e.words, false); }
  });
  $("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const t = await api("POST", "/api/tokens", { name: $("token-name").value, role: $("token-role").value });
      const m = $("token-msg");
      m.className = "msg ok";
      m.replaceChildren("New token (copy it now, it is not shown again): ", el("span", { class: "token-once", text: t.token }));
      $("token-name").value = "";
      loadTokens();
    } catch (e) { msg("token-msg", e.words, false); }
  });
  $("pw-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/api/auth/password", { current_password: $("pw-cur").value, new_password: $("pw-new").value });
      $("pw-cur").value = ""; $("pw-new").value = "";
      await refreshSession();
      msg("pw-msg", r.message);
    } catch (e) { msg("pw-msg", e.words, false); }
  });
  $("panel-btn").addEventListener("click", async () => {
    try { await api("POST", "/api/auth/panel"); window.location.href = "/"; } catch (e) { showResult(e.words); }
  });
  $("exp-from").addEventListener("change", exportLink);
  $("exp-to").addEventListener("change", exportLink);
}

applyTheme();
wire();
showAuth().catch((e) => msg("login-msg", e instanceof ApiError ? e.words : String(e), false));
