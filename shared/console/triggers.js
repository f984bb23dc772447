// Triggers: the list; the editor (Heymarket's "paste a sample, map the
// fields": leaf paths picked into transform lines, tried through the preview
// route); the URL and API key shown once; the request log with replay.

import { api, el, fill, failure, field, input, select, checkbox, showError, clearErrors, table, paged, copyButton, pretty, when, id, go, onceNotice, changes, ApiError, section, deleteButton } from "./ui.js";

export async function list(once = {}) {
  const first = await api("GET", paged("/v1/triggers"));
  const row = (t) => el("tr", {},
    el("td", { "data-label": "Name" }, el("a", { href: `#/triggers/${id(t.id)}` }, t.name)),
    el("td", { "data-label": "URL" }, el("code", {}, t.url)),
    el("td", { "data-label": "Status", class: "status" }, t.active ? "active" : "inactive"),
    el("td", { "data-label": "Created" }, when(t.created_at)));
  return ["Triggers",
    onceNotice(once),
    el("p", {}, el("a", { href: "#/triggers/new", class: "button" }, "New trigger")),
    first.data.length
      ? table(["Name", "URL", "Status", "Created"], first, row, (c) => api("GET", paged("/v1/triggers", c)))
      : el("p", {}, "No triggers yet.")];
}

const TARGETS = ["email", "name", "first_name", "last_name", "phone_number"];

/** The transform with `target = path` set: the line for `target` replaced,
 * or added. */
export function mapLine(transform, target, path) {
  const lines = transform.split("\n");
  const at = lines.findIndex((l) => l.split("=")[0].trim() === target && !l.trim().startsWith("#"));
  const line = `${target} = ${path}`;
  if (at >= 0) lines[at] = line;
  else if (lines.length === 1 && lines[0].trim() === "") lines[0] = line;
  else lines.push(line);
  return lines.join("\n");
}

const ACTIONS = [
  ["add_to_list", "Add to list", [["list_id", "List id"]]],
  ["add_to_sequence", "Add to sequence", [["sequence_id", "Sequence id"]]],
  ["stop_sequence", "Stop sequence", [["sequence_id", "Sequence id"]]],
  ["update_contact", "Update the contact", []],
  ["send_message", "Send a message", [["webhook_id", "Webhook id"], ["template", "Template ({{email}}, {{fields.key}})"]]],
  ["publish_event", "Publish an event", [["event", "Event type"]]],
];

/** Rows of actions, each a type and its parameters. */
function actionsEditor(actions) {
  const rows = el("ol", { class: "rows" });
  const add = (a = { type: "add_to_list" }) => {
    const params = el("span", { class: "params" });
    const kind = select(ACTIONS.map(([v, l]) => [v, l]), a.type, { "aria-label": "Action" });
    const draw = () => {
      const spec = ACTIONS.find(([v]) => v === kind.value);
      fill(params, spec[2].map(([name, label]) => input({ "aria-label": label, placeholder: label, "data-param": name, value: a[name] ?? "" })));
    };
    kind.addEventListener("change", draw);
    draw();
    const item = el("li", {}, kind, params,
      el("button", { type: "button", class: "quiet", onclick: () => item.remove() }, "Remove"));
    rows.append(item);
  };
  actions.forEach(add);
  const box = el("div", { class: "actions" }, rows,
    el("button", { type: "button", class: "quiet", onclick: () => add() }, "Add action"));
  box.value = () => [...rows.children].map((li) => {
    const a = { type: li.querySelector("select").value };
    for (const p of li.querySelectorAll("[data-param]")) a[p.dataset.param] = p.value;
    return a;
  });
  return box;
}

/** The editor of trigger `triggerId` ("new": a new one). `once`: what the
 * save or rotation before answered, to show this once (`made`: a trigger
 * with its API key; `saved`). */
export async function edit(triggerId, once = {}) {
  const t = triggerId === "new"
    ? { name: "", identifier: "email", transform: "", actions: [], require_api_key: false, active: true }
    : await api("GET", `/v1/triggers/${id(triggerId)}`);
  const name = input({ value: t.name, required: true });
  const identifier = select([["email", "Email"], ["phone_number", "Phone number"]], t.identifier);
  const transform = el("textarea", { rows: 6, spellcheck: "false", class: "code" });
  transform.value = t.transform || "";
  const [requireKey, requireLabel] = checkbox("Require an API key (Authorization: Bearer)", t.require_api_key, { id: "f-require-api-key" });
  const [active, activeLabel] = checkbox("Active: its URL takes requests from the start", true, { id: "f-active" });
  const actions = actionsEditor(t.actions);
  const sample = el("textarea", { rows: 6, spellcheck: "false", class: "code", placeholder: '{"candidate": {"email": "ada@example.com"}}' });
  const mapped = el("div", { "aria-live": "polite" });
  const contact = el("div", { "aria-live": "polite" });

  const form = el("form", { class: "editor", novalidate: true });
  let previews = 0;
  /** Reads the sample through the preview route; `focusOn`: the label of
   * the control to give the keyboard back to once the table is redrawn. */
  const preview = async (focusOn) => {
    const mine = ++previews;
    clearErrors(form);
    let parsed;
    try {
      parsed = JSON.parse(sample.value);
    } catch (e) {
      form.querySelector('[data-error-for="sample"]').textContent = `The sample is not JSON: ${e.message}`;
      sample.setAttribute("aria-invalid", "true");
      sample.focus();
      return;
    }
    const body = { sample: parsed, transform: transform.value, identifier: identifier.value };
    const path = triggerId === "new" ? "/v1/triggers/preview" : `/v1/triggers/${id(triggerId)}/preview`;
    let answer = null;
    let error = null;
    try {
      answer = await api("POST", path, body);
    } catch (e) {
      error = e;
    }
    // A slower answer to an earlier read never replaces a later one.
    if (mine !== previews) return;
    const paths = answer ? answer.paths : (error && error.details && error.details.paths) || [];
    fill(mapped, paths.length ? pathsTable(paths) : null);
    if (error) {
      showError(form, error);
      fill(contact, error.details && error.details.contact ? [el("h3", {}, "Contact so far"), el("pre", {}, pretty(error.details.contact))] : null);
    } else {
      fill(contact, el("h3", {}, "The contact it would make"), el("pre", { class: "contact" }, pretty(answer.contact)));
    }
    const back = focusOn && [...mapped.querySelectorAll("select")].find((n) => n.getAttribute("aria-label") === focusOn);
    if (back) back.focus();
  };
  const pathsTable = (paths) => el("table", { class: "paths" },
    el("caption", {}, "The sample's fields: map each to a contact field"),
    el("thead", {}, el("tr", {}, ["Path", "Value", "Map to"].map((h) => el("th", {}, h)))),
    el("tbody", {}, paths.map((p) => {
      // Chosen, then applied by the button: arrow keys on a select change
      // it step by step, and each step is not a choice.
      const label = `Map ${p.path} to`;
      const to = select([["", "—"], ...TARGETS.map((f) => [f, f]), ["custom", "custom field…"]], "", { "aria-label": label });
      const apply = el("button", {
        type: "button",
        class: "quiet",
        "aria-label": `Map ${p.path}`,
        onclick: async () => {
          let target = to.value;
          if (target === "custom") target = `fields.${p.path.split(/[.[\]]/).filter(Boolean).pop().replace(/[^A-Za-z0-9_]/g, "_")}`;
          if (!target) return;
          transform.value = mapLine(transform.value, target, p.path);
          await preview(label);
        },
      }, "Map");
      return el("tr", {},
        el("td", { "data-label": "Path" }, el("code", {}, p.path)),
        el("td", { "data-label": "Value" }, typeof p.value === "string" ? p.value : JSON.stringify(p.value)),
        el("td", { "data-label": "Map to" }, to, " ", apply));
    })));

  // What was shown once (a key) has a box of its own, kept through this
  // page's re-renders; other outcomes go in `result`.
  const kept = { made: once.made };
  const onceBox = el("div", { "aria-live": "polite" }, onceNotice(once));
  const result = el("div", { "aria-live": "polite" });
  form.append(
    field("Name", "name", name),
    field("Identifier", "identifier", identifier, "The contact field that finds the contact."),
    field("Sample payload", "sample", sample, "Paste a body like those the trigger will receive, then read it."),
    el("button", { type: "button", class: "quiet", onclick: () => preview() }, "Read sample"),
    mapped,
    field("Transform", "transform", transform, "One `target = expression` a line; targets: email, name, first_name, last_name, phone_number, fields.<key>."),
    contact,
    el("div", { class: "field" }, requireKey, requireLabel),
    triggerId === "new" ? el("div", { class: "field" }, active, activeLabel) : null,
    el("fieldset", {}, el("legend", {}, "Actions"), actions, el("p", { class: "error field-error", "data-error-for": "actions" })),
    el("div", { class: "form-error" }),
    el("button", { type: "submit" }, triggerId === "new" ? "Create trigger" : "Save"));
  const current = () => ({
    name: name.value,
    identifier: identifier.value,
    transform: transform.value.trim() ? transform.value : null,
    actions: actions.value(),
    require_api_key: requireKey.checked,
  });
  const loaded = current();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    let body = current();
    try {
      if (triggerId === "new") {
        const made = await api("POST", "/v1/triggers", { ...body, active: active.checked });
        await go(`#/triggers/${id(made.id)}`, { made });
      } else {
        // Only what differs from what was loaded: a field left alone is not
        // checked again (an action's list deleted since, say).
        body = changes(loaded, body);
        let made = kept.made;
        try {
          await api("PATCH", `/v1/triggers/${id(triggerId)}`, body);
        } catch (e) {
          // Required again while it has no key: one is made (the key it
          // had before is kept when it has one), shown this once.
          if (!(e instanceof ApiError && e.code === "api_key_needed")) throw e;
          delete body.require_api_key;
          await api("PATCH", `/v1/triggers/${id(triggerId)}`, body);
          made = await api("POST", `/v1/triggers/${id(triggerId)}/rotate-key`);
        }
        await go(location.hash, { saved: true, made });
      }
    } catch (e) {
      showError(form, e);
    }
  });

  if (triggerId === "new") return ["New trigger", form];

  const buttons = el("p", { class: "buttons" },
    el("button", {
      type: "button", class: "quiet",
      onclick: async () => {
        try {
          await api("POST", `/v1/triggers/${id(t.id)}/${t.active ? "deactivate" : "activate"}`);
          await go(location.hash, kept);
        } catch (e) {
          fill(result, failure(e));
        }
      },
    }, t.active ? "Deactivate" : "Activate"),
    el("button", {
      type: "button", class: "quiet",
      onclick: async () => {
        if (!confirm("Make a new API key? The current one stops working at once.")) return;
        try {
          kept.made = await api("POST", `/v1/triggers/${id(t.id)}/rotate-key`);
          fill(onceBox, onceNotice(kept));
          // It requires its key now: said in place (the form keeps what is
          // typed in it, the keyboard stays on this button).
          keyNote.textContent = " · requires its API key";
          requireKey.checked = true;
          loaded.require_api_key = true;
        } catch (e) {
          fill(result, failure(e));
        }
      },
    }, "Rotate API key"),
    deleteButton(`the trigger ${t.name}`, `/v1/triggers/${id(t.id)}`, "#/triggers", result));
  const log = await section("Requests", () => requests(t.id));
  const keyNote = el("span", {}, t.require_api_key ? " · requires its API key" : "");
  return [t.name,
    el("p", {}, "URL: ", el("code", {}, t.url), " ", copyButton("Copy URL", t.url), " ",
      el("span", { class: "status" }, t.active ? "active" : "inactive"), keyNote),
    buttons, onceBox, result,
    log.nodes,
    el("h2", {}, "Settings"),
    form];
}

async function requests(triggerId) {
  const base = `/v1/triggers/${id(triggerId)}/requests`;
  const first = await api("GET", paged(base));
  const row = (r) => {
    const detail = el("td", { "data-label": "Reason" }, r.reason || "");
    const replay = r.status === "failed" && !r.payload_omitted
      ? el("button", {
        type: "button", class: "quiet",
        onclick: async () => {
          try {
            const q = await api("POST", `${base}/${id(r.id)}/replay`);
            replay.replaceWith(el("span", { class: "muted" }, `replay queued (attempt ${q.attempt})`));
          } catch (e) {
            detail.append(failure(e));
          }
        },
      }, "Replay")
      : null;
    return el("tr", { "data-request": r.id },
      el("td", { "data-label": "Received" }, when(r.received_at)),
      el("td", { "data-label": "Outcome", class: `status ${r.status === "applied" ? "ok" : "error"}` }, r.status),
      detail,
      el("td", { "data-label": "Contact" }, (r.contact && (r.contact.email || r.contact.phone_number)) || ""),
      el("td", { "data-label": "Payload" }, el("details", {}, el("summary", {}, "payload"), el("pre", {}, pretty(r.payload)))),
      el("td", {}, replay));
  };
  return first.data.length
    ? table(["Received", "Outcome", "Reason", "Contact", "Payload", ""], first, row, (c) => api("GET", paged(base, c)))
    : el("p", {}, "No requests yet: POST JSON to the trigger URL.");
}

