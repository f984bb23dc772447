// Hookline's console: plain JavaScript over the public API. Everything shown
// that comes from the API (names, URLs, response bodies) goes in as text
// (textContent), never as HTML. The admin key is kept in this page's memory
// only: not in any storage, a cookie or a URL; a reload asks for it again.

let key = "";
let rendering = 0;
const main = document.getElementById("main");
const nav = document.getElementById("nav");

/** An element with attributes and children; strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces `node`'s children (as `el` makes them: none for null). */
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/** An API error, with the contract's code and message. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
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
    // A key revoked while signed in: back to the sign-in form.
    if (response.status === 401 && !nav.hidden) signOut();
    throw new ApiError(response.status, e.code || "error", e.message || `HTTP ${response.status}`);
  }
  return json;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function page(title, ...content) {
  fill(main, el("h1", {}, title), ...content);
}

function failure(e) {
  return el("p", { class: "error", role: "alert" }, e instanceof ApiError ? `${e.message} (${e.code})` : String(e));
}

async function webhooks() {
  const list = await api("GET", "/v1/webhooks?limit=200");
  const result = el("div", { "aria-live": "polite" });
  const rows = list.data.map((w) => {
    const toggle = el("button", {
      type: "button",
      class: "quiet",
      "data-toggle": w.id,
      "aria-label": `${w.active ? "Deactivate" : "Activate"} ${w.name}`,
      onclick: async () => {
        try {
          await api("POST", `/v1/webhooks/${encodeURIComponent(w.id)}/${w.active ? "deactivate" : "activate"}`);
          await render();
          // Back where the keyboard was: this webhook's toggle.
          const again = [...main.querySelectorAll("button[data-toggle]")].find((b) => b.dataset.toggle === w.id);
          if (again) again.focus();
        } catch (e) {
          fill(result, failure(e));
        }
      },
    }, w.active ? "Deactivate" : "Activate");
    const test = el("button", {
      type: "button",
      "aria-label": `Test ${w.name}`,
      onclick: async () => {
        fill(result, el("p", { class: "muted" }, `Testing ${w.name}…`));
        try {
          const a = await api("POST", `/v1/webhooks/${encodeURIComponent(w.id)}/test`);
          fill(result,
            el("h2", {}, `Test of ${w.name}`),
            el("p", { class: a.status === "succeeded" ? "ok status" : "error status" },
              `${a.status}: ${a.response_status ?? "no answer"} in ${a.duration_ms} ms`),
            a.error ? el("p", {}, a.error) : null,
            a.response_body ? el("pre", {}, a.response_body) : null,
          );
        } catch (e) {
          fill(result, failure(e));
        }
      },
    }, "Test");
    return el("tr", {},
      el("td", { "data-label": "Name" }, w.name),
      el("td", { "data-label": "Endpoint" }, w.endpoint),
      el("td", { "data-label": "Events" }, w.events.join(", ")),
      el("td", { "data-label": "Status", class: "status" }, w.status),
      el("td", { "data-label": "Created" }, when(w.created_at)),
      el("td", {}, toggle, " ", test));
  });
  const limit = list.usage.limit === null ? "no limit" : `of ${list.usage.limit}`;
  return ["Webhooks",
    el("p", { class: "muted" }, `${list.usage.count} ${limit}`),
    rows.length
      ? el("table", {}, el("thead", {}, el("tr", {}, ["Name", "Endpoint", "Events", "Status", "Created", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", {}, "No webhooks yet."),
    result];
}

async function triggers() {
  const list = await api("GET", "/v1/triggers?limit=200");
  const rows = list.data.map((t) => el("tr", {},
    el("td", { "data-label": "Name" }, t.name),
    el("td", { "data-label": "URL" }, t.url || `/hooks/${t.id}`),
    el("td", { "data-label": "Active" }, t.active ? "active" : "inactive"),
    el("td", { "data-label": "Created" }, when(t.created_at))));
  return ["Triggers", rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ["Name", "URL", "Status", "Created"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", {}, "No triggers yet.")];
}

async function campaigns() {
  const list = await api("GET", "/v1/campaigns?limit=200");
  const rows = list.data.map((c) => el("tr", {},
    el("td", { "data-label": "Name" }, c.name),
    el("td", { "data-label": "URL" }, c.url),
    el("td", { "data-label": "Schedule" }, c.schedule.type),
    el("td", { "data-label": "Status" }, c.active ? "active" : "inactive"),
    el("td", { "data-label": "Next run" }, when(c.next_run_at))));
  return ["Campaigns", rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ["Name", "URL", "Schedule", "Status", "Next run"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", {}, "No campaigns yet.")];
}

async function deadLetters() {
  const list = await api("GET", "/v1/dead-letters?limit=200");
  const result = el("div", { "aria-live": "polite" });
  const redrive = el("button", {
    type: "button",
    onclick: async () => {
      try {
        await api("POST", "/v1/dead-letters/redrive");
        await render();
      } catch (e) {
        fill(result, failure(e));
      }
    },
  }, "Redrive all");
  const rows = list.data.map((d) => el("tr", {},
    el("td", { "data-label": "Queue" }, d.queue),
    el("td", { "data-label": "Kind" }, d.kind),
    el("td", { "data-label": "Reason" }, d.reason),
    el("td", { "data-label": "Dead at" }, when(d.dead_at))));
  return ["Dead letters", rows.length
    ? [el("table", {}, el("thead", {}, el("tr", {}, ["Queue", "Kind", "Reason", "Dead at"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)), redrive]
    : el("p", {}, "No dead letters."), result];
}

const pages = { "#/webhooks": webhooks, "#/triggers": triggers, "#/campaigns": campaigns, "#/dead-letters": deadLetters };

/** Shows the page the hash names; `moved`: the hash changed, so focus goes
 * to the page. A slower answer of an earlier render never replaces a later one. */
async function render(moved = false) {
  if (!key) return;
  const mine = ++rendering;
  const show = pages[location.hash] || webhooks;
  let shown;
  try {
    shown = await show();
  } catch (e) {
    shown = ["Something went wrong", failure(e)];
  }
  if (!key || mine !== rendering) return;
  page(...shown);
  if (moved) main.focus();
}

function signOut() {
  key = "";
  location.reload();
}

function signedIn() {
  nav.hidden = false;
  main.setAttribute("tabindex", "-1");
  render(true);
}

document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", () => render(true));

const form = document.getElementById("sign-in");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("sign-in-error");
  const input = document.getElementById("key");
  key = input.value.trim();
  try {
    await api("GET", "/v1/usage");
    input.value = "";
    signedIn();
  } catch (e) {
    key = "";
    input.setAttribute("aria-invalid", "true");
    error.textContent = e instanceof ApiError && e.status === 401 ? "That key opens no account." : String(e.message || e);
    input.focus();
  }
});
