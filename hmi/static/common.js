// Shared by the wall page and the installer pages: the API client (session, CSRF token,
// errors with their fields), number and money formatting, the theme.

export const auth = { role: "none", csrf: null, pinConfigured: false, setupRequired: false,
                      publicView: true };

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const msg = (body && body.error) || `HTTP ${status}`;
    super(msg);
    this.status = status;
    this.problems = (body && body.problems) || [];
    this.retryAfter = retryAfter ? Number(retryAfter) : null;
  }
  get words() {
    if (this.problems.length) {
      return this.problems.map((p) => (p.where ? `${p.where}: ${p.reason}` : p.reason)).join("; ");
    }
    return this.message;
  }
}

export async function refreshSession() {
  const r = await fetch("/api/auth/session", { credentials: "same-origin", cache: "no-store" });
  const j = await r.json();
  auth.role = j.role;
  auth.csrf = j.csrf_token;
  auth.pinConfigured = j.pin_configured;
  auth.setupRequired = j.setup_required;
  auth.publicView = j.public_view;
  return auth;
}

export async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    if (!auth.csrf) await refreshSession();
    headers["X-CSRF-Token"] = auth.csrf;
  }
  let r;
  try {
    r = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { error: "The controller cannot be reached. Try again in a moment." });
  }
  let data = null;
  const type = r.headers.get("content-type") || "";
  if (type.includes("json")) {
    try { data = await r.json(); } catch (e) { data = null; }
  }
  if (!r.ok) {
    // The session or its CSRF token may have changed (a restart, a login elsewhere): once.
    if (r.status === 403 && !retried && method !== "GET" && data && /CSRF/.test(data.error || "")) {
      await refreshSession();
      return api(method, path, body, true);
    }
    throw new ApiError(r.status, data, r.headers.get("Retry-After"));
  }
  return data;
}

export function fmtPower(w) {
  if (w === null || w === undefined || Number.isNaN(w)) return "–";
  const a = Math.abs(w);
  if (a < 1000) return `${Math.round(a)} W`;
  return `${(a / 1000).toFixed(a < 10000 ? 2 : 1)} kW`;
}

export function fmtMoney(text, currency, signed = false) {
  if (text === null || text === undefined) return "–";
  const v = Number(text);
  const f = new Intl.NumberFormat(undefined, {
    style: "currency", currency, minimumFractionDigits: 2, maximumFractionDigits: 2,
    signDisplay: signed ? "exceptZero" : "auto",
  });
  return f.format(v);
}

export function fmtInt(n) {
  return new Intl.NumberFormat().format(n);
}

const THEMES = ["dark", "light"];

export function applyTheme() {
  let t = null;
  try { t = localStorage.getItem("hearth-theme"); } catch (e) { t = null; }
  if (!THEMES.includes(t)) t = "dark";
  document.documentElement.dataset.theme = t;
  return t;
}

export function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  try { localStorage.setItem("hearth-theme", next); } catch (e) { /* private mode */ }
  document.documentElement.dataset.theme = next;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;  // CSSOM: allowed by the page's CSP
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
