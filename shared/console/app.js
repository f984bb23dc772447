// Hookline's console: plain JavaScript modules over the public API.
// Everything shown that comes from the API (names, URLs, response bodies)
// goes in as text (textContent), never as HTML. The admin key is kept in
// this page's memory only: not in any storage, a cookie or a URL; a reload
// asks for it again.

import { api, el, fill, failure, setKey, signedIn, whenUnauthorized, setNavigator, onceNotice, ApiError } from "./ui.js";
import * as webhooks from "./webhooks.js";
import * as triggers from "./triggers.js";
import * as campaigns from "./campaigns.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let rendering = 0;

/** The page a hash names: `#/webhooks`, `#/webhooks/<id>`, `#/webhooks/new`... */
function route(hash) {
  const [, section = "webhooks", item] = hash.split("/");
  const pages = {
    webhooks: [webhooks.list, webhooks.edit],
    triggers: [triggers.list, triggers.edit],
    campaigns: [campaigns.list, campaigns.edit],
    "dead-letters": [webhooks.deadLetters, null],
  };
  const [list, one] = pages[section] || pages.webhooks;
  return item && one ? (once) => one(decodeURIComponent(item), once) : (once) => list(once);
}

/** Shows the page the hash names; `moved`: the hash changed, so focus goes
 * to the page. A slower answer of an earlier render never replaces a later one. */
async function render(moved = false, once = {}) {
  if (!signedIn()) return;
  const mine = ++rendering;
  let shown;
  try {
    shown = await route(location.hash)(once);
  } catch (e) {
    // What the answer before showed this once stays on screen.
    shown = [e instanceof ApiError && e.status === 404 ? "Not found" : "Something went wrong", onceNotice(once), failure(e)];
  }
  if (!signedIn() || mine !== rendering) return;
  const [title, ...content] = shown;
  fill(main, el("h1", {}, title), ...content);
  for (const a of nav.querySelectorAll("a")) {
    if (location.hash.startsWith(a.getAttribute("href"))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (moved) main.focus();
}

/** After a save: to `hash`, showing `once` there. */
let pendingOnce = null;
setNavigator(async (hash, once = {}) => {
  if (location.hash === hash) return render(false, once);
  pendingOnce = once;
  location.hash = hash;
});
window.addEventListener("hashchange", () => {
  const once = pendingOnce || {};
  pendingOnce = null;
  render(true, once);
});

function signOut() {
  setKey("");
  location.reload();
}
// A key revoked while signed in: back to the sign-in form.
whenUnauthorized(() => {
  if (!nav.hidden) signOut();
});
document.getElementById("sign-out").addEventListener("click", signOut);

const form = document.getElementById("sign-in");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("sign-in-error");
  const input = document.getElementById("key");
  setKey(input.value.trim());
  try {
    await api("GET", "/v1/usage");
    input.value = "";
    nav.hidden = false;
    main.setAttribute("tabindex", "-1");
    render(true);
  } catch (e) {
    setKey("");
    input.setAttribute("aria-invalid", "true");
    error.textContent = e instanceof ApiError && e.status === 401 ? "That key opens no account." : String(e.message || e);
    input.focus();
  }
});

// The sign-in form works from here on: the benchmark's "interactive".
performance.mark("hookline-interactive");
