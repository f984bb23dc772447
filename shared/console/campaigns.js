// Campaigns (Mixpanel's form): the list; create and edit with `where`
// checked by the API (its error at the column at fault), the schedule, a
// test send and the runs.

import { api, el, fill, failure, field, input, select, checkbox, showError, clearErrors, table, paged, when, id, go, onceNotice, changes, section, deleteButton } from "./ui.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

function describe(s) {
  if (s.type === "asap") return "as soon as users match";
  const at = `${s.at} ${s.timezone}`;
  if (s.type === "scheduled") return `${s.days.join(", ")} at ${at}${s.every_weeks > 1 ? `, every ${s.every_weeks} weeks` : ""}`;
  return `recurring ${s.every}${s.every === "asap" ? "" : ` at ${at}`}`;
}

export async function list(once = {}) {
  const first = await api("GET", paged("/v1/campaigns"));
  const row = (c) => el("tr", {},
    el("td", { "data-label": "Name" }, el("a", { href: `#/campaigns/${id(c.id)}` }, c.name)),
    el("td", { "data-label": "URL" }, c.url),
    el("td", { "data-label": "Schedule" }, describe(c.schedule)),
    el("td", { "data-label": "Status", class: "status" }, c.active ? "active" : "inactive"),
    el("td", { "data-label": "Next run" }, when(c.next_run_at)));
  return ["Campaigns",
    onceNotice(once),
    el("p", {}, el("a", { href: "#/campaigns/new", class: "button" }, "New campaign")),
    first.data.length
      ? table(["Name", "URL", "Schedule", "Status", "Next run"], first, row, (c) => api("GET", paged("/v1/campaigns", c)))
      : el("p", {}, "No campaigns yet.")];
}

function scheduleEditor(s) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const type = select([["asap", "As soon as users match"], ["scheduled", "Scheduled (time and weekdays)"], ["recurring", "Recurring"]], s.type);
  const at = input({ type: "time", value: s.at || "09:00" });
  const timezone = input({ value: s.timezone || zone, placeholder: "America/Los_Angeles" });
  const everyWeeks = input({ type: "number", min: 1, value: s.every_weeks || 1 });
  const every = select([["daily", "Daily"], ["weekly", "Weekly"], ["monthly", "Monthly"], ["asap", "As users match"]], s.every || "daily");
  const dayOfMonth = input({ type: "number", min: 1, max: 31, value: s.day_of_month || 1 });
  const maxPerUser = input({ type: "number", min: 1, value: (s.limit && s.limit.max_per_user) ?? "", placeholder: "no limit" });
  const minInterval = input({ value: (s.limit && s.limit.min_interval) ?? "", placeholder: "e.g. 7d" });
  const days = DAYS.map((d) => {
    const [box, label] = checkbox(d, (s.days || []).includes(d), { id: `f-day-${d}`, "data-day": d });
    return el("span", { class: "choice" }, box, label);
  });
  const dayBox = el("fieldset", {}, el("legend", {}, "Days"), el("div", { class: "choices" }, days),
    el("p", { class: "error field-error", "data-error-for": "schedule.days" }));
  const box = el("div");
  const draw = () => {
    const t = type.value;
    const e = every.value;
    fill(box,
      t === "recurring" ? field("Every", "schedule.every", every) : null,
      t === "scheduled" || (t === "recurring" && e !== "asap") ? [field("At", "schedule.at", at), field("Time zone", "schedule.timezone", timezone)] : null,
      t === "scheduled" || (t === "recurring" && e === "weekly") ? dayBox : null,
      t === "scheduled" ? field("Every how many weeks", "schedule.every_weeks", everyWeeks) : null,
      t === "recurring" && e === "monthly" ? field("Day of the month", "schedule.day_of_month", dayOfMonth) : null,
      t === "recurring" ? [field("At most this many sends a user", "schedule.limit.max_per_user", maxPerUser),
        field("At least this long between sends to a user", "schedule.limit.min_interval", minInterval)] : null);
  };
  type.addEventListener("change", draw);
  every.addEventListener("change", draw);
  draw();
  const out = el("fieldset", { "data-field": "schedule", tabindex: -1 }, el("legend", {}, "Schedule"), field("Type", "schedule.type", type), box,
    el("p", { class: "error field-error", "data-error-for": "schedule" }));
  out.value = () => {
    const t = type.value;
    if (t === "asap") return { type: t };
    const chosen = [...dayBox.querySelectorAll("[data-day]")].filter((b) => b.checked).map((b) => b.dataset.day);
    if (t === "scheduled") return { type: t, at: at.value, days: chosen, every_weeks: Number(everyWeeks.value), timezone: timezone.value.trim() };
    const r = { type: t, every: every.value };
    if (every.value !== "asap") Object.assign(r, { at: at.value, timezone: timezone.value.trim() });
    if (every.value === "weekly") r.days = chosen;
    if (every.value === "monthly") r.day_of_month = Number(dayOfMonth.value);
    const limit = {};
    if (maxPerUser.value !== "") limit.max_per_user = Number(maxPerUser.value);
    if (minInterval.value.trim()) limit.min_interval = minInterval.value.trim();
    r.limit = limit;
    return r;
  };
  return out;
}

export async function edit(campaignId, once = {}) {
  const creating = campaignId === "new";
  const c = creating
    ? { name: "", url: "", where: "true", schedule: { type: "asap" }, active: true }
    : await api("GET", `/v1/campaigns/${id(campaignId)}`);
  const name = input({ value: c.name });
  const url = input({ type: "url", value: c.url, placeholder: "https://example.com/mixpanel" });
  const where = el("textarea", { rows: 3, spellcheck: "false", class: "code" });
  where.value = c.where;
  const schedule = scheduleEditor(c.schedule);
  const [active, activeLabel] = checkbox("Active", c.active, { id: "f-active" });
  const current = () => ({ name: name.value, url: url.value.trim(), where: where.value, schedule: schedule.value() });
  const loaded = current();
  const form = el("form", { class: "editor", novalidate: true },
    field("Name", "name", name),
    field("URL", "url", url, "Matched users are POSTed here, form-encoded, 50 at a time."),
    field("Where", "where", where, "CEL over user, now, did(event, days), count(event, days), time(value): timestamp(user['Last Seen']) < now - duration('504h')"),
    schedule,
    creating ? el("div", { class: "field" }, active, activeLabel) : null,
    el("div", { class: "form-error" }),
    el("button", { type: "submit" }, creating ? "Create campaign" : "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    // An edit sends only what differs from what was loaded: `where` sent
    // again counts as new criteria (users sent may be sent again), and a
    // schedule sent again counts its weeks from now.
    let body = current();
    if (creating) body.active = active.checked;
    else body = changes(loaded, body);
    try {
      const saved = await api(creating ? "POST" : "PATCH", creating ? "/v1/campaigns" : `/v1/campaigns/${id(campaignId)}`, body);
      await go(`#/campaigns/${id(saved.id)}`, { saved: true });
    } catch (e) {
      showError(form, e);
    }
  });
  if (creating) return ["New campaign", form];

  const result = el("div", { "aria-live": "polite" }, onceNotice(once));
  const act = (label, path, show) => el("button", {
    type: "button", class: "quiet",
    onclick: async () => {
      fill(result, el("p", { class: "muted" }, `${label}…`));
      try {
        const answer = await api("POST", `/v1/campaigns/${id(c.id)}/${path}`);
        if (show) fill(result, show(answer));
        else await go(location.hash);
      } catch (e) {
        fill(result, failure(e));
      }
    },
  }, label);
  const tested = (t) => {
    const a = t.attempt;
    if (!a) return el("p", { role: "status" }, "No profiles to send yet.");
    return el("p", { role: "status", class: a.succeeded ? "ok status" : "error status" },
      `Test: ${t.users} profiles posted, ${a.response_status ?? "no answer"} in ${a.duration_ms} ms${a.error ? `: ${a.error}` : ""}`);
  };
  const log = await section("Runs", () => runs(c.id));
  const started = () => {
    log.reload();
    return el("p", { role: "status", class: "ok" }, "Run started: its progress is under Runs (Refresh shows it as it goes).");
  };
  return [c.name,
    el("p", {}, el("span", { class: "status" }, c.active ? "active" : "inactive"), ` · ${describe(c.schedule)}`,
      c.next_run_at ? ` · next run ${when(c.next_run_at)}` : ""),
    el("p", { class: "buttons" }, act(c.active ? "Deactivate" : "Activate", c.active ? "deactivate" : "activate"), " ",
      act("Run now", "run", started), " ",
      act("Send a test", "test", tested), " ",
      deleteButton(`the campaign ${c.name}`, `/v1/campaigns/${id(c.id)}`, "#/campaigns", result)),
    result,
    log.nodes,
    el("h2", {}, "Settings"),
    form];
}

async function runs(campaignId) {
  const base = `/v1/campaigns/${id(campaignId)}/runs`;
  const first = await api("GET", paged(base));
  const row = (r) => el("tr", {},
    el("td", { "data-label": "Started" }, when(r.started_at)),
    el("td", { "data-label": "Status", class: "status" }, r.status),
    el("td", { "data-label": "Matched" }, r.matched),
    el("td", { "data-label": "Sent" }, r.sent),
    el("td", { "data-label": "Failed" }, r.failed),
    el("td", { "data-label": "Pending" }, r.pending),
    el("td", { "data-label": "Skipped" }, r.skipped),
    el("td", { "data-label": "Errors" }, r.errors));
  return first.data.length
    ? table(["Started", "Status", "Matched", "Sent", "Failed", "Pending", "Skipped", "Errors"], first, row, (cur) => api("GET", paged(base, cur)))
    : el("p", {}, "No runs yet.");
}
