// Webhooks (Mumara's list): usage, status toggle, test button; the editor of
// every field of the contract, secrets write-only ("blank keeps it");
// per webhook its attempts and a chart of the last 24 hours.

import { api, el, fill, failure, field, input, select, checkbox, showError, clearErrors, table, paged, when, id, go, onceNotice, changes, section, deleteButton } from "./ui.js";

const EVENTS = ["received", "delivered", "bounced", "rejected", "delayed", "newsletter_opened", "newsletter_clicked",
  "transactional_opened", "transactional_clicked", "complaint", "webhook.disabled"];
const FILTERS = ["sending_domain", "sending_node", "bridge", "dedicated_ip", "campaign_id"];

/** The outcome of a test send, as text. */
function attemptShown(a, name) {
  return [
    el("h2", {}, `Test of ${name}`),
    el("p", { class: a.status === "succeeded" ? "ok status" : "error status" },
      `${a.status}: ${a.response_status ?? "no answer"} in ${a.duration_ms} ms`),
    a.error ? el("p", {}, a.error) : null,
    a.response_body ? el("pre", {}, a.response_body) : null,
  ];
}

/** Sends a test and shows its attempt in `result`; then `after()` (the
 * detail page's attempts and chart load again, the test among them). */
function testButton(w, result, after = async () => {}) {
  return el("button", {
    type: "button",
    "aria-label": `Test ${w.name}`,
    onclick: async () => {
      fill(result, el("p", { class: "muted" }, `Testing ${w.name}…`));
      try {
        fill(result, attemptShown(await api("POST", `/v1/webhooks/${id(w.id)}/test`), w.name));
      } catch (e) {
        fill(result, failure(e));
      }
      await after();
    },
  }, "Test");
}

function toggleButton(w, result, after) {
  return el("button", {
    type: "button",
    class: "quiet",
    "data-toggle": w.id,
    "aria-label": `${w.active ? "Deactivate" : "Activate"} ${w.name}`,
    onclick: async () => {
      try {
        await api("POST", `/v1/webhooks/${id(w.id)}/${w.active ? "deactivate" : "activate"}`);
        await after();
      } catch (e) {
        fill(result, failure(e));
      }
    },
  }, w.active ? "Deactivate" : "Activate");
}

export async function list(once = {}) {
  const first = await api("GET", paged("/v1/webhooks"));
  const result = el("div", { "aria-live": "polite" });
  const row = (w) => el("tr", {},
    el("td", { "data-label": "Name" }, el("a", { href: `#/webhooks/${id(w.id)}` }, w.name)),
    el("td", { "data-label": "Endpoint" }, w.endpoint),
    el("td", { "data-label": "Events" }, w.events.join(", ")),
    el("td", { "data-label": "Status", class: "status" }, w.status),
    el("td", { "data-label": "Created" }, when(w.created_at)),
    el("td", {}, toggleButton(w, result, async () => {
      await go(location.hash);
      // Back where the keyboard was: this webhook's toggle.
      const again = [...document.querySelectorAll("button[data-toggle]")].find((b) => b.dataset.toggle === w.id);
      if (again) again.focus();
    }), " ", testButton(w, result)));
  const { count, limit } = first.usage;
  const usage = `${count} webhook${count === 1 ? "" : "s"}${limit === null ? " (no limit)" : ` of ${limit} allowed`}`;
  return ["Webhooks",
    onceNotice(once),
    el("p", { class: "muted" }, usage),
    el("p", {}, el("a", { href: "#/webhooks/new", class: "button" }, "New webhook")),
    first.data.length
      ? table(["Name", "Endpoint", "Events", "Status", "Created", ""], first, row, (c) => api("GET", paged("/v1/webhooks", c)))
      : el("p", {}, "No webhooks yet."),
    result];
}

/** Values typed one a line (a value may hold a comma). */
const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const words = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

/** The form's channel part: the fields of the type chosen. Credentials are
 * never answered: blank keeps the current one. */
function channelEditor(w, creating) {
  const c = w.channel || { type: "web" };
  const kind = select([["web", "Web endpoint"], ["pushover", "Pushover"], ["twilio", "SMS (Twilio)"]], c.type);
  const keeps = creating ? undefined : "blank keeps the current one";
  const controls = {
    url: input({ value: c.url, type: "url", placeholder: "https://example.com/hooks" }),
    method: select([["POST", "POST"], ["GET", "GET (payload as query parameters)"]], c.method || "POST"),
    content_type: select([["json", "JSON"], ["form", "Form (x-www-form-urlencoded)"]], c.content_type || "json"),
    auth: select([["none", "None"], ["basic", "Basic"]], (c.auth && c.auth.type) || "none"),
    username: input({ value: c.auth && c.auth.username }),
    password: input({ type: "password", placeholder: keeps }),
    secret: input({ type: "password", placeholder: keeps || "optional: signs each request" }),
    user_key: input({ value: c.user_key }),
    api_token: input({ type: "password", placeholder: keeps }),
    sound: input({ value: c.sound, placeholder: "pushover" }),
    account_sid: input({ value: c.account_sid }),
    auth_token: input({ type: "password", placeholder: keeps }),
    from: input({ value: c.from, placeholder: "+15550100" }),
    to_field: input({ value: c.to_field, placeholder: "phone" }),
  };
  // Basic auth's fields, shown while it is chosen.
  const credentials = el("div", {}, field("Username", "channel.auth.username", controls.username),
    field("Password", "channel.auth.password", controls.password));
  const showCredentials = () => {
    credentials.hidden = controls.auth.value !== "basic";
  };
  controls.auth.addEventListener("change", showCredentials);
  showCredentials();
  const [unsign, unsignLabel] = checkbox("Stop signing (remove the secret)", false, { id: "f-unsign" });
  const parts = {
    web: [field("URL", "channel.url", controls.url), field("Method", "channel.method", controls.method),
      field("Body", "channel.content_type", controls.content_type), field("Authentication", "channel.auth", controls.auth),
      credentials,
      field("Signing secret", "channel.secret", controls.secret, "Standard Webhooks signatures. Never shown again."),
      !creating && c.signed ? el("div", { class: "field" }, unsign, unsignLabel) : null],
    pushover: [field("User key", "channel.user_key", controls.user_key), field("API token", "channel.api_token", controls.api_token),
      field("Sound", "channel.sound", controls.sound)],
    twilio: [field("Account SID", "channel.account_sid", controls.account_sid), field("Auth token", "channel.auth_token", controls.auth_token),
      field("From", "channel.from", controls.from), field("Event field with the number", "channel.to_field", controls.to_field)],
  };
  const box = el("div");
  const draw = () => fill(box, parts[kind.value]);
  kind.addEventListener("change", draw);
  draw();
  const out = el("fieldset", {}, el("legend", {}, "Channel"), field("Type", "channel.type", kind), box);
  out.value = () => {
    const ch = { type: kind.value };
    const set = (name, v) => {
      if (v !== "") ch[name] = v;
    };
    if (kind.value === "web") {
      set("url", controls.url.value.trim());
      ch.method = controls.method.value;
      ch.content_type = controls.content_type.value;
      ch.auth = controls.auth.value === "basic"
        ? { type: "basic", username: controls.username.value, ...(controls.password.value ? { password: controls.password.value } : {}) }
        : { type: "none" };
      if (unsign.checked) ch.secret = null;
      else set("secret", controls.secret.value);
    } else {
      for (const name of kind.value === "pushover" ? ["user_key", "api_token", "sound"] : ["account_sid", "auth_token", "from", "to_field"]) {
        set(name, controls[name].value.trim());
      }
    }
    return ch;
  };
  return out;
}

/** The payload part: standard, mappings (one `field = from` or
 * `field := "static"` a line) or a transform. */
function payloadEditor(p) {
  const mode = select([["standard", "The standard event payload"], ["mappings", "Mappings"], ["transform", "A transform (CEL lines)"]],
    p && p.mappings ? "mappings" : p && p.transform ? "transform" : "standard");
  const mappings = el("textarea", { rows: 4, spellcheck: "false", class: "code", placeholder: 'email = email\nsource := "webhook"' });
  mappings.value = ((p && p.mappings) || []).map((m) => (m.from !== undefined ? `${m.field} = ${m.from}` : `${m.field} := ${JSON.stringify(m.value)}`)).join("\n");
  const transform = el("textarea", { rows: 4, spellcheck: "false", class: "code", placeholder: 'text = "Bounce: " + email' });
  transform.value = (p && p.transform) || "";
  const box = el("div");
  const draw = () => fill(box, mode.value === "mappings"
    ? field("Mappings", "payload.mappings", mappings, "One a line: `field = event_field`, or `field := \"static value\"` (JSON).")
    : mode.value === "transform" ? field("Transform", "payload.transform", transform) : null);
  mode.addEventListener("change", draw);
  draw();
  const out = el("fieldset", {}, el("legend", {}, "Payload"), field("Send", "payload", mode), box);
  out.value = () => {
    if (mode.value === "standard") return null;
    if (mode.value === "transform") return { transform: transform.value };
    return {
      mappings: mappings.value.split("\n").filter((l) => l.trim()).map((line) => {
        const fixed = line.indexOf(":=");
        if (fixed >= 0) {
          const raw = line.slice(fixed + 2).trim();
          let value = raw;
          try {
            value = JSON.parse(raw);
          } catch {
            // Plain text: the value as written.
          }
          return { field: line.slice(0, fixed).trim(), value };
        }
        const [name, ...from] = line.split("=");
        return { field: name.trim(), from: from.join("=").trim() };
      }),
    };
  };
  return out;
}

export async function edit(webhookId, once = {}) {
  const creating = webhookId === "new";
  const kept = { secret: once.secret };
  const w = creating
    ? { name: "", events: ["delivered"], filters: {}, payload: null, rate_limit: null, log_response_body: true, active: true }
    : await api("GET", `/v1/webhooks/${id(webhookId)}`);
  const name = input({ value: w.name, required: true });
  const channel = channelEditor(w, creating);
  const known = new Set(EVENTS);
  const eventBoxes = EVENTS.map((e) => {
    const [box, label] = checkbox(e, w.events.includes(e), { id: `f-event-${e.replace(".", "-")}`, "data-event": e });
    return el("span", { class: "choice" }, box, label);
  });
  const extra = input({ value: w.events.filter((e) => !known.has(e)).join(", "), placeholder: "events your triggers publish, comma separated" });
  const filters = Object.fromEntries(FILTERS.map((f) => {
    const box = el("textarea", { rows: 2, spellcheck: "false", placeholder: "any (one value a line)" });
    box.value = ((w.filters || {})[f] || []).join("\n");
    return [f, box];
  }));
  const payload = payloadEditor(w.payload);
  const rate = input({ type: "number", min: 1, max: 10000, value: w.rate_limit ?? "", placeholder: "no limit" });
  const [logBodies, logLabel] = checkbox("Keep response bodies in the attempt log", w.log_response_body, { id: "f-log-body" });
  const [active, activeLabel] = checkbox("Active: deliver events from the start", true, { id: "f-active" });

  const form = el("form", { class: "editor", novalidate: true },
    field("Name", "name", name),
    channel,
    el("fieldset", { "data-field": "events", tabindex: -1 }, el("legend", {}, "Events"), el("div", { class: "choices" }, eventBoxes),
      field("Other events", "events.other", extra), el("p", { class: "error field-error", "data-error-for": "events" })),
    el("fieldset", {}, el("legend", {}, "Filters (values ORed, one a line; filters ANDed; empty: any)"),
      FILTERS.map((f) => field(f, `filters.${f}`, filters[f]))),
    payload,
    field("Rate limit (deliveries a second)", "rate_limit", rate),
    el("div", { class: "field" }, logBodies, logLabel),
    creating ? el("div", { class: "field" }, active, activeLabel) : null,
    el("div", { class: "form-error" }),
    el("button", { type: "submit" }, creating ? "Create webhook" : "Save"));
  const current = () => ({
    name: name.value,
    channel: channel.value(),
    events: [...form.querySelectorAll("[data-event]")].filter((b) => b.checked).map((b) => b.dataset.event).concat(words(extra.value)),
    filters: Object.fromEntries(FILTERS.map((f) => [f, lines(filters[f].value)])),
    payload: payload.value(),
    rate_limit: rate.value === "" ? null : Number(rate.value),
    log_response_body: logBodies.checked,
  });
  const loaded = current();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      if (creating) {
        const made = await api("POST", "/v1/webhooks", { ...current(), active: active.checked });
        await go(`#/webhooks/${id(made.id)}`, { saved: true });
      } else {
        // Only what differs from what was loaded: a field left alone is not
        // checked again. The channel goes whole when any of it changed;
        // its credentials left blank are kept.
        await api("PATCH", `/v1/webhooks/${id(webhookId)}`, changes(loaded, current()));
        await go(location.hash, { saved: true, secret: kept.secret });
      }
    } catch (e) {
      showError(form, e);
    }
  });
  if (creating) return ["New webhook", form];

  // A secret shown once has a box of its own, kept through this page's
  // re-renders (the toggle's); other outcomes go in `result`.
  const onceBox = el("div", { "aria-live": "polite" }, onceNotice(once));
  const result = el("div", { "aria-live": "polite" });
  // Only a signed channel has a secret to rotate (the secret field adds one).
  const rotate = w.channel.type === "web" && w.channel.signed
    ? el("button", {
      type: "button", class: "quiet",
      onclick: async () => {
        try {
          // Shown here at once: nothing else need load for it to be seen.
          kept.secret = (await api("POST", `/v1/webhooks/${id(w.id)}/rotate-secret`)).secret;
          fill(onceBox, onceNotice(kept));
        } catch (e) {
          fill(result, failure(e));
        }
      },
    }, "Rotate secret")
    : null;
  const [plot, log] = await Promise.all([section("Last 24 hours", () => chart(w.id)), section("Attempts", () => attempts(w.id))]);
  const status = [w.status, w.disabled ? ` (${w.disabled.reason})` : "", w.failing_since ? ` · failing since ${when(w.failing_since)}` : ""].join("");
  const tested = () => Promise.all([plot.reload(), log.reload()]);
  return [w.name,
    el("p", {}, el("span", { class: "status" }, status), " · ", w.endpoint),
    el("p", { class: "buttons" }, toggleButton(w, result, () => go(location.hash, kept)), " ", testButton(w, result, tested), " ", rotate, " ",
      deleteButton(`the webhook ${w.name}`, `/v1/webhooks/${id(w.id)}`, "#/webhooks", result)),
    onceBox,
    result,
    plot.nodes,
    log.nodes,
    el("h2", {}, "Settings"),
    form];
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/** Deliveries (succeeded, failed) as stacked bars per hour and the mean
 * latency as a line, drawn as SVG elements; the figures also as a table. */
async function chart(webhookId) {
  const stats = await api("GET", `/v1/webhooks/${id(webhookId)}/stats?hours=24`);
  const hours = stats.hours;
  const sum = (k) => hours.reduce((n, h) => n + h[k], 0);
  const peak = Math.max(1, ...hours.map((h) => h.succeeded + h.failed));
  const slowest = Math.max(1, ...hours.map((h) => h.avg_ms));
  const [W, H, bar] = [480, 120, 20];
  const plot = svg("svg", { viewBox: `0 0 ${W} ${H + 16}`, class: "chart", role: "img", "aria-label": "Deliveries and latency per hour" });
  hours.forEach((h, i) => {
    const x = i * bar + 2;
    const ok = (h.succeeded / peak) * H;
    const bad = (h.failed / peak) * H;
    plot.append(svg("rect", { x, y: H - ok, width: bar - 4, height: ok, class: "bar-ok" }, svg("title", {}, `${h.succeeded} succeeded`)));
    plot.append(svg("rect", { x, y: H - ok - bad, width: bar - 4, height: bad, class: "bar-bad" }, svg("title", {}, `${h.failed} failed`)));
    if (i % 6 === 0) plot.append(svg("text", { x, y: H + 13, class: "axis" }, new Date(h.hour).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  });
  const line = hours.map((h, i) => `${i * bar + bar / 2},${H - (h.avg_ms / slowest) * H}`).join(" ");
  plot.append(svg("polyline", { points: line, class: "latency" }));
  const made = sum("calls");
  const avg = made ? Math.round(hours.reduce((n, h) => n + h.avg_ms * h.calls, 0) / made) : 0;
  return el("div", { class: "stats" },
    el("p", { class: "summary" }, `${sum("succeeded")} succeeded, ${sum("failed")} failed, mean latency ${avg} ms`,
      stats.complete ? "" : " (more than could be read: the oldest hours count too few)"),
    el("p", { class: "muted legend" }, el("span", { class: "key-ok" }, "■ succeeded "), el("span", { class: "key-bad" }, "■ failed "),
      el("span", { class: "key-latency" }, `— mean latency (top: ${slowest} ms)`)),
    plot,
    el("details", {}, el("summary", {}, "As a table"),
      el("table", {}, el("thead", {}, el("tr", {}, ["Hour", "Succeeded", "Failed", "Mean ms", "Max ms"].map((t) => el("th", {}, t)))),
        el("tbody", {}, hours.map((h) => el("tr", {}, el("td", {}, when(h.hour)), el("td", {}, h.succeeded), el("td", {}, h.failed),
          el("td", {}, h.avg_ms), el("td", {}, h.max_ms)))))));
}

async function attempts(webhookId) {
  const base = `/v1/webhooks/${id(webhookId)}/attempts`;
  const first = await api("GET", paged(base));
  const row = (a) => el("tr", {},
    el("td", { "data-label": "At" }, when(a.at)),
    el("td", { "data-label": "Event" }, `${a.event} #${a.attempt}${a.test ? " (test)" : ""}`),
    el("td", { "data-label": "Status", class: `status ${a.status === "succeeded" ? "ok" : a.status === "pending" ? "" : "error"}` }, a.status),
    el("td", { "data-label": "Response" }, a.response_status ?? a.error ?? ""),
    el("td", { "data-label": "Duration" }, `${a.duration_ms} ms`),
    el("td", { "data-label": "Next" }, when(a.next_attempt_at)),
    el("td", { "data-label": "Body" }, a.response_body ? el("details", {}, el("summary", {}, "body"), el("pre", {}, a.response_body)) : ""));
  return first.data.length
    ? table(["At", "Event", "Status", "Response", "Duration", "Next attempt", "Body"], first, row, (c) => api("GET", paged(base, c)))
    : el("p", {}, "No attempts yet.");
}

export async function deadLetters(once = {}) {
  const first = await api("GET", paged("/v1/dead-letters"));
  const result = el("div", { "aria-live": "polite" },
    once.redriven ? el("p", { class: "ok", role: "status" }, "Redrive started: the dead letters go back to their queues.") : null);
  const redrive = el("button", {
    type: "button",
    onclick: async () => {
      try {
        await api("POST", "/v1/dead-letters/redrive");
        await go(location.hash, { redriven: true });
      } catch (e) {
        fill(result, failure(e));
      }
    },
  }, "Redrive all");
  const row = (d) => el("tr", {},
    el("td", { "data-label": "Queue" }, d.queue),
    el("td", { "data-label": "Kind" }, d.kind),
    el("td", { "data-label": "Reason" }, d.reason),
    el("td", { "data-label": "Dead at" }, when(d.dead_at)));
  return ["Dead letters", first.data.length
    ? [table(["Queue", "Kind", "Reason", "Dead at"], first, row, (c) => api("GET", paged("/v1/dead-letters", c))), redrive]
    : el("p", {}, "No dead letters."), result];
}
