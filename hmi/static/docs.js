// A small offline reader of the OpenAPI document (no CDN on an offline Pi): every
// endpoint with its summary, parameters, request body and answers, schemas expanded.

import { applyTheme, el } from "./common.js";

let spec = null;

function ref(s) {
  if (s && s.$ref) return spec.components.schemas[s.$ref.split("/").pop()];
  return s;
}

function typeText(s, depth = 0) {
  s = s || {};
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.anyOf) return s.anyOf.map((x) => typeText(x, depth)).join(" | ");
  if (s.enum) return s.enum.map((x) => JSON.stringify(x)).join(" | ");
  if (s.type === "array") return `${typeText(s.items, depth)}[]`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  return s.type || "any";
}

function schemaTable(s) {
  s = ref(s);
  if (!s || !s.properties) return el("code", { text: typeText(s) });
  const req = new Set(s.required || []);
  const t = el("table", { class: "list" });
  for (const [k, v] of Object.entries(s.properties)) {
    t.append(el("tr", {}, el("td", {}, el("code", { text: k + (req.has(k) ? " *" : "") })),
      el("td", {}, el("code", { text: typeText(v) })), el("td", { class: "muted", text: v.description || "" })));
  }
  return t;
}

function operation(path, method, op) {
  const box = el("details", { class: "panel" });
  box.append(el("summary", {}, el("b", { text: `${method.toUpperCase()} ${path}` }), ` — ${op.summary || ""}`));
  if (op.description) box.append(el("p", { text: op.description }));
  const params = op.parameters || [];
  if (params.length) {
    box.append(el("h2", { text: "Parameters" }));
    const t = el("table", { class: "list" });
    for (const p of params) {
      t.append(el("tr", {}, el("td", {}, el("code", { text: p.name + (p.required ? " *" : "") })),
        el("td", { text: p.in }), el("td", {}, el("code", { text: typeText(p.schema) })),
        el("td", { class: "muted", text: p.description || "" })));
    }
    box.append(t);
  }
  const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (body) {
    box.append(el("h2", { text: "Body (JSON)" }), schemaTable(body.schema));
  }
  box.append(el("h2", { text: "Answers" }));
  const t = el("table", { class: "list" });
  for (const [code, r] of Object.entries(op.responses || {})) {
    const c = r.content || {};
    const type = Object.keys(c)[0] || "";
    const sch = c[type] && c[type].schema;
    t.append(el("tr", {}, el("td", { text: code }), el("td", { text: r.description || "" }),
      el("td", {}, el("code", { text: sch ? typeText(sch) : type }))));
  }
  box.append(t);
  if (op.security) box.append(el("p", { class: "muted", text: "Needs a login (session + X-CSRF-Token for changes) or an API token." }));
  return box;
}

async function main() {
  applyTheme();
  spec = await (await fetch("/api/openapi.json")).json();
  const root = document.getElementById("docs");
  root.replaceChildren(el("section", { class: "panel" }, el("h1", { text: `${spec.info.title} ${spec.info.version}` }),
    el("p", { text: spec.info.description || "" })));
  const byTag = new Map();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(path, method, op));
    }
  }
  for (const [tag, ops] of byTag) root.append(el("h2", { text: tag }), ...ops);
  const names = Object.keys(spec.components.schemas).sort();
  const models = el("details", { class: "panel" }, el("summary", {}, el("b", { text: "Schemas" })));
  for (const n of names) models.append(el("h2", { text: n }), schemaTable(spec.components.schemas[n]));
  root.append(models);
}

main();
