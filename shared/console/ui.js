// What every page of the console shares: making elements, calling the API,
// showing its errors next to the fields they name, paging lists.
// Everything from the API goes in as text (textContent), never as HTML.

let key = "";

export function setKey(k) {
  key = k;
}

export function signedIn() {
  return key !== "";
}

/** An element with attributes and children; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value ?? "";
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces `node`'s children (none for null). */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** An API error, with the contract's code, message and details. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not the API's answer (a proxy's error page): its status says enough.
  }
  if (!response.ok) {
    const e = (json && json.error) || {};
    if (response.status === 401) onUnauthorized();
    throw new ApiError(response.status, e.code || "error", e.message || `HTTP ${response.status}`, e.details);
  }
  return json;
}

export const id = encodeURIComponent;

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function failure(e) {
  return el("p", { class: "error", role: "alert" }, e instanceof ApiError ? `${e.message} (${e.code})` : String(e));
}

/** A labelled input; `name` is the API's field (`channel.url`), which an
 * error naming it is shown under. */
export function field(label, name, control, hint) {
  const uid = `f-${name.replace(/[^a-z0-9]/gi, "-")}`;
  control.id = uid;
  control.dataset.field = name;
  const error = el("p", { class: "error field-error", id: `${uid}-error`, "data-error-for": name });
  control.setAttribute("aria-describedby", `${uid}-error${hint ? ` ${uid}-hint` : ""}`);
  return el("div", { class: "field" },
    el("label", { for: uid }, label),
    hint ? el("p", { class: "muted hint", id: `${uid}-hint` }, hint) : null,
    control, error);
}

export function input(attrs = {}) {
  return el("input", { type: "text", autocomplete: "off", ...attrs });
}

export function select(options, chosen, attrs = {}) {
  return el("select", attrs, options.map(([value, label]) => el("option", { value, selected: value === chosen }, label)));
}

export function checkbox(label, checked, attrs = {}) {
  const box = el("input", { type: "checkbox", ...attrs });
  box.checked = !!checked;
  return [box, el("label", { class: "inline", for: attrs.id }, label)];
}

/** The field an API error names: `details.field`, else the message's
 * leading `path:`, else what its code is about. */
export function fieldOf(e) {
  if (!(e instanceof ApiError)) return null;
  if (e.details.field) return e.details.field;
  const m = /^([a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z0-9_$]+(?:\[\d+\])?)*):/i.exec(e.message);
  if (m) return m[1];
  const byCode = { invalid_transform: "transform", transform_failed: "transform", invalid_where: "where", invalid_identifier: "identifier", invalid_sample: "sample", missing_identifier: "transform" };
  return byCode[e.code] || null;
}

/** Shows `e` under the form's field it names (the nearest one: `channel.url`
 * falls back to `channel`), or in the form's own error line. */
export function showError(form, e) {
  clearErrors(form);
  let name = fieldOf(e);
  while (name) {
    const slot = [...form.querySelectorAll("[data-error-for]")].find((n) => n.dataset.errorFor === name);
    if (slot) {
      slot.textContent = e.message;
      const control = [...form.querySelectorAll("[data-field]")].find((n) => n.dataset.field === name);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        control.focus();
        caret(control, e.details.line || 1, e.details.column || (e.details.line ? 1 : 0));
      }
      return;
    }
    const cut = Math.max(name.lastIndexOf("."), name.lastIndexOf("["));
    name = cut > 0 ? name.slice(0, cut) : null;
  }
  const general = form.querySelector(".form-error");
  if (general) fill(general, failure(e));
}

/** In a textarea, the caret to the line and column an error names. */
function caret(control, line, column) {
  if (control.tagName !== "TEXTAREA" || !column) return;
  const lines = control.value.split("\n");
  let at = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) at += lines[i].length + 1;
  at = Math.min(at + column - 1, control.value.length);
  control.setSelectionRange(at, at);
}

export function clearErrors(form) {
  for (const n of form.querySelectorAll("[data-error-for]")) n.textContent = "";
  for (const n of form.querySelectorAll("[aria-invalid]")) n.removeAttribute("aria-invalid");
  const general = form.querySelector(".form-error");
  if (general) fill(general);
}

/** A table of `rows`, with a "More" button while `next` answers pages
 * (`next(cursor)` answers `{data, next_cursor}`). */
export function table(headers, first, row, next) {
  const body = el("tbody", {}, first.data.map(row));
  const out = el("div", {}, el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), body));
  let cursor = first.next_cursor;
  if (cursor) {
    const more = el("button", {
      type: "button",
      class: "quiet",
      onclick: async () => {
        more.disabled = true;
        try {
          const page = await next(cursor);
          const rows = page.data.map(row);
          body.append(...rows);
          cursor = page.next_cursor;
          if (!cursor) {
            more.remove();
            // The keyboard goes on from the first row added.
            if (rows.length) {
              rows[0].tabIndex = -1;
              rows[0].focus();
            }
          }
        } catch (e) {
          out.append(failure(e));
        }
        more.disabled = false;
      },
    }, "More");
    out.append(more);
  }
  return out;
}

/** `path` with `?limit=200` (and the cursor). */
export function paged(path, cursor) {
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
}

/** A button that copies `text` and says so. */
export function copyButton(label, text) {
  const b = el("button", {
    type: "button",
    class: "quiet",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        b.textContent = "Copied";
      } catch {
        b.textContent = "Select and copy it";
      }
    },
  }, label);
  return b;
}

/** A part of a page loaded by `load()` under its heading, with a Refresh
 * button that loads it again in place (the rest of the page, a form being
 * typed in, stays as it is). Its error is shown in its place. `reload()`
 * does the same from code (after a test send, say). */
export async function section(title, load) {
  const box = el("div", { "aria-live": "polite" });
  // Loads may overlap (Refresh pressed twice, a test send's reload): only
  // the latest one started is shown, and ends the busy state.
  let latest = 0;
  const reload = async () => {
    const mine = ++latest;
    box.setAttribute("aria-busy", "true");
    let shown;
    try {
      shown = await load();
    } catch (e) {
      shown = failure(e);
    }
    if (mine !== latest) return;
    fill(box, shown);
    box.removeAttribute("aria-busy");
  };
  const refresh = el("button", { type: "button", class: "quiet", "aria-label": `Refresh ${title.toLowerCase()}`, onclick: reload }, "Refresh");
  await reload();
  return { nodes: [el("div", { class: "section-head" }, el("h2", {}, title), refresh), box], reload };
}

/** A button that deletes what `path` names once confirmed, then goes to
 * `to` (a list) and says so there. */
export function deleteButton(what, path, to, result) {
  return el("button", {
    type: "button",
    class: "quiet danger",
    onclick: async () => {
      if (!confirm(`Delete ${what}? This cannot be undone.`)) return;
      try {
        await api("DELETE", path);
        await go(to, { deleted: what });
      } catch (e) {
        fill(result, failure(e));
      }
    },
  }, "Delete");
}

/** A value for a `<pre>`: JSON pretty-printed. */
export function pretty(v) {
  return JSON.stringify(v, null, 2);
}

let navigate = async () => {};
/** Shows the page at `hash`, with `once`: what only the answer before had
 * (a key made, "saved"), shown this once. */
export function go(hash, once) {
  return navigate(hash, once);
}
export function setNavigator(f) {
  navigate = f;
}

/** What an answer showed this once (a trigger's new API key, a webhook's
 * new secret): kept on screen whatever else fails to load. */
export function onceNotice(once = {}) {
  const t = once.made;
  return [
    once.saved ? el("p", { class: "ok", role: "status" }, "Saved.") : null,
    once.deleted ? el("p", { class: "ok", role: "status" }, `Deleted ${once.deleted}.`) : null,
    t ? el("div", { class: "notice", role: "status" },
      el("p", {}, "Trigger URL: ", el("code", {}, t.url), " ", copyButton("Copy URL", t.url)),
      t.api_key ? el("p", {}, "API key (shown this once): ", el("code", { class: "once" }, t.api_key), " ", copyButton("Copy key", t.api_key)) : null) : null,
    once.secret ? el("div", { class: "notice", role: "status" },
      el("p", {}, "New signing secret (shown this once; the old one signs beside it for 24 hours): ", el("code", { class: "once" }, once.secret), " ",
        copyButton("Copy secret", once.secret))) : null,
  ];
}

/** The fields of `after` that differ from `before` (compared as JSON): what
 * an edit sends, so that a field left alone is never re-checked or reset. */
export function changes(before, after) {
  return Object.fromEntries(Object.entries(after).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(before[k])));
}
