// The portal: one account's handlers, their attempts and events, charts and inbox, drawn from
// Herald's JSON API with the portal link's token. Views are chosen by the URL's fragment.

import { api, ApiError, everyPage, forgetToken, takeToken, unauthorized } from "./api.js";
import { healthChart, hoursOf, legend, sumHours } from "./chart.js";
import { append, confirmAction, h, percent, replace, say, when } from "./dom.js";
import { handlerForm, TYPES } from "./form.js";

const main = document.getElementById("main");
const PAGE_SIZE = 25;
const FILTERED_CHART_HANDLERS = 20;
const state = { handlers: null, filters: { type: "", app: "", state: "" }, page: 1, window: 24 };

function heading(text) {
  return h("h2", { tabindex: "-1" }, text);
}

/** The fragment whose view is being drawn: a slow answer for a view left since draws nothing. */
let routedHash = "";

function show(...children) {
  if (location.hash !== routedHash) return;
  replace(main, ...children);
  main.querySelector("h2")?.focus();
}

function stateOf(handler) {
  if (!handler.is_enabled) return handler.disabled_reason ? "disabled by Herald" : "disabled";
  return "enabled";
}

let inFlight = 0;
const waiting = [];

/** `task()` once fewer than four requests it started are in flight: the API's rate limit is
 * per token, and a page of rows must not fire all its requests at once. */
async function limited(task) {
  if (inFlight >= 4) await new Promise((resolve) => waiting.push(resolve));
  inFlight++;
  try { return await task(); } finally { inFlight--; waiting.shift()?.(); }
}

/** Each handler's stats, asked once per view (its rows and its chart share them). */
const statsCache = new Map();

function stats(id, hours) {
  const key = `${id}/${hours}`;
  if (!statsCache.has(key)) {
    statsCache.set(key, limited(() => api("GET", `notification-handlers/${id}/stats?hours=${hours}`)).then((a) => a.data));
  }
  return statsCache.get(key);
}

function windowSwitch(onChange) {
  return h("div", { class: "switch", role: "group", "aria-label": "Chart window" },
    ...[[24, "24 hours"], [168, "7 days"]].map(([hours, text]) => h("button", {
      type: "button", "aria-pressed": String(state.window === hours),
      onclick: () => { state.window = hours; onChange(); },
    }, text)));
}

function chartBox(id) {
  return h("figure", { class: "chart-box", id }, h("p", {}, "Loading the chart…"));
}

function chartCaption(label) {
  return h("figcaption", {}, label, " — ", state.window === 24 ? "last 24 hours" : "last 7 days");
}

/** One handler's chart, or the sum of several (the handlers a filter shows). */
async function drawChart(box, ids, label) {
  const all = await Promise.all(ids.map((id) => stats(id, state.window)));
  if (all.length === 0) return replace(box, chartCaption(label), h("p", {}, "No handler to chart yet."));
  if (all.length === 1) {
    return replace(box, chartCaption(label), healthChart(hoursOf(all[0], "median_ms"), label), legend("median latency"));
  }
  replace(box, chartCaption(label), healthChart(sumHours(all), label), legend("latency (the handlers' medians, averaged)"));
}

/** Every handler of the account together, from the account's hourly counts. */
async function drawAccountChart(box) {
  const label = "Every handler of the account";
  const account = (await api("GET", `v1/stats?hours=${state.window}`)).data;
  replace(box, chartCaption(label), healthChart(hoursOf(account, "mean_ms"), label), legend("mean latency"));
}

// --- the handler list ---------------------------------------------------------------------

function filtered() {
  const { type, app, state: wanted } = state.filters;
  return state.handlers.filter((handler) => (!type || handler.type === type)
    && (!app || (handler.app || "").toLowerCase().includes(app.toLowerCase()))
    && (!wanted || (wanted === "enabled") === handler.is_enabled));
}

function filterBar(redraw) {
  const change = (name) => (event) => { state.filters[name] = event.target.value; state.page = 1; redraw(); };
  return h("form", { class: "filters", role: "search", "aria-label": "Filter handlers", onsubmit: (e) => e.preventDefault() },
    h("label", { for: "filter-type" }, "Type"),
    h("select", { id: "filter-type", onchange: change("type") }, h("option", { value: "" }, "any"),
      ...Object.keys(TYPES).map((t) => h("option", { value: t, selected: state.filters.type === t }, t.replaceAll("_", " ")))),
    h("label", { for: "filter-app" }, "App"),
    h("input", { id: "filter-app", type: "search", value: state.filters.app, oninput: change("app") }),
    h("label", { for: "filter-state" }, "State"),
    h("select", { id: "filter-state", onchange: change("state") },
      ...[["", "any"], ["enabled", "enabled"], ["disabled", "disabled"]].map(([value, text]) =>
        h("option", { value, selected: state.filters.state === value }, text))));
}

function healthCells(handler) {
  const last = h("td", { "data-label": "Last attempt" }, when(handler.last_datetime));
  const rate = h("td", { "data-label": "Success (24 h)" }, "…");
  stats(handler.id, 24).then((s) => {
    replace(rate, percent(s.success_rate), s.attempts ? ` of ${s.attempts}` : "");
    if (s.last_status) append(last, [" ", h("span", { class: `pill ${s.last_status}` }, s.last_status)]);
  }).catch(() => replace(rate, "?"));
  return [last, rate];
}

function handlerRows(handlers) {
  return handlers.map((handler) => h("tr", {},
    h("th", { scope: "row", "data-label": "Name" }, h("a", { href: `#handler/${handler.id}` }, handler.name)),
    h("td", { "data-label": "Type" }, handler.type.replaceAll("_", " ")),
    h("td", { "data-label": "App" }, handler.app || "every app"),
    h("td", { "data-label": "State" }, h("span", { class: `pill ${handler.is_enabled ? "on" : "off"}` }, stateOf(handler)),
      handler.disabled_reason ? h("span", { class: "reason" }, handler.disabled_reason) : null),
    ...healthCells(handler)));
}

async function handlersView() {
  state.handlers = await everyPage("notification-handlers");
  const listBox = h("div", { id: "handler-list" });
  const accountChart = chartBox("account-chart");
  const redraw = () => {
    const matching = filtered();
    const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages);
    const shown = matching.slice((state.page - 1) * PAGE_SIZE, state.page * PAGE_SIZE);
    replace(listBox,
      h("p", { class: "count" }, `${matching.length} of ${state.handlers.length} handlers`),
      matching.length === 0 ? h("p", {}, "No handler matches.") : h("table", { class: "handlers" },
        h("caption", { class: "visually-hidden" }, "Notification handlers"),
        h("thead", {}, h("tr", {}, ...["Name", "Type", "App", "State", "Last attempt", "Success (24 h)"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, ...handlerRows(shown))),
      pages > 1 ? h("nav", { class: "pager", "aria-label": "Handler pages" },
        h("button", { type: "button", disabled: state.page === 1, onclick: () => { state.page--; redraw(); } }, "Previous"),
        h("span", {}, `Page ${state.page} of ${pages}`),
        h("button", { type: "button", disabled: state.page === pages, onclick: () => { state.page++; redraw(); } }, "Next")) : null);
    const { type, app, state: wanted } = state.filters;
    if (!type && !app && !wanted) {
      drawAccountChart(accountChart).catch(failed);
      return;
    }
    const charted = matching.slice(0, FILTERED_CHART_HANDLERS).map((handler) => handler.id);
    const label = matching.length > charted.length ? `The first ${charted.length} handlers shown` : "The handlers shown";
    drawChart(accountChart, charted, label).catch(failed);
  };
  const chartSwitch = windowSwitch(() => handlersView().catch(failed));
  show(heading("Handlers"),
    h("div", { class: "toolbar" }, h("a", { href: "#new", class: "button primary" }, "New handler")),
    filterBar(redraw), h("section", { "aria-label": "Delivery health" }, chartSwitch, accountChart), listBox);
  redraw();
}

// --- one handler ----------------------------------------------------------------------------

function secretBox(secret) {
  const output = h("code", { id: "secret" }, secret);
  return h("div", { class: "secret", role: "region", "aria-label": "Signing secret" },
    h("p", {}, "Signing secret (shown once; receivers verify signatures with it):"), output,
    h("button", { type: "button", onclick: async () => {
      await navigator.clipboard.writeText(secret).then(() => say("Secret copied."), () => say("Select the secret and copy it.", "error"));
    } }, "Copy"));
}

async function handlerView(id, secret) {
  const handler = (await api("GET", `notification-handlers/${id}`)).data;
  const outcome = h("div", { id: "test-outcome", "aria-live": "polite" });
  const secretSlot = h("div", {}, secret ? secretBox(secret) : null);
  const act = (label, work, extra = {}) => h("button", { type: "button", ...extra, onclick: async (event) => {
    event.target.disabled = true;
    try { await work(); } catch (error) { failed(error); } finally { event.target.disabled = false; }
  } }, label);
  const actions = h("div", { class: "toolbar" },
    h("a", { href: `#edit/${id}`, class: "button" }, "Edit"),
    act(handler.is_enabled ? "Disable" : "Enable", async () => {
      await api("PATCH", `notification-handlers/${id}`, { is_enabled: !handler.is_enabled });
      say(handler.is_enabled ? "Disabled." : "Enabled.");
      await handlerView(id);
    }),
    act("Send test", async () => {
      replace(outcome, "Sending…");
      const result = (await api("POST", `notification-handlers/${id}/test`)).data;
      replace(outcome, h("p", { class: `pill ${result.ok ? "delivered" : "failed"}` }, result.ok ? "Test delivered" : "Test failed"),
        ` ${result.outcome}`, result.http_status ? ` · HTTP ${result.http_status}` : "", ` · ${result.duration_ms} ms`,
        result.error ? h("p", { class: "error-text" }, result.error) : null);
    }),
    handler.type === "webhook" ? act("Rotate secret", async () => {
      const answer = (await api("POST", `notification-handlers/${id}/rotate-secret`)).data;
      replace(secretSlot, secretBox(answer.secret));
      say("New secret made; the old one signs for 24 hours more.");
    }) : null,
    act("Delete", async () => {
      if (!(await confirmAction(`Delete the handler “${handler.name}”? Its deliveries stop at once.`, "Delete"))) return;
      await api("DELETE", `notification-handlers/${id}`);
      say("Handler deleted.");
      location.hash = "#handlers";
    }, { class: "danger" }));
  const chart = chartBox("handler-chart");
  const attempts = h("section", { "aria-labelledby": "attempts-title" });
  show(heading(handler.name),
    h("dl", { class: "facts" },
      h("dt", {}, "Type"), h("dd", {}, handler.type.replaceAll("_", " ")),
      h("dt", {}, "App"), h("dd", {}, handler.app || "every app"),
      h("dt", {}, "State"), h("dd", {}, stateOf(handler), handler.disabled_reason ? ` — ${handler.disabled_reason}` : ""),
      h("dt", {}, "Last attempt"), h("dd", {}, when(handler.last_datetime)),
      ...Object.entries(handler.settings).flatMap(([name, value]) => [h("dt", {}, name.replaceAll("_", " ")), h("dd", {}, value)])),
    actions, outcome, secretSlot,
    h("section", { "aria-label": "Delivery health" }, windowSwitch(() => drawChart(chart, [id], handler.name).catch(failed)), chart),
    recoverForm(id), attempts);
  drawChart(chart, [id], handler.name).catch(failed);
  await attemptsSection(attempts, id, "", 1);
}

function recoverForm(id) {
  const since = new Date(Date.now() - 24 * 3600 * 1000);
  const local = new Date(since.getTime() - since.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const input = h("input", { type: "datetime-local", id: "recover-since", value: local });
  return h("form", { class: "inline", "aria-label": "Recover failed deliveries", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const answer = (await api("POST", `notification-handlers/${id}/recover`, { since: new Date(input.value).toISOString() })).data;
      say(`${answer.requeued.length} failed deliveries queued again.`);
    } catch (error) { failed(error); }
  } }, h("label", { for: "recover-since" }, "Send again what failed since"), input, h("button", { type: "submit" }, "Recover"));
}

async function attemptsSection(section, id, status, page) {
  const query = `page=${page}&results_per_page=25${status ? `&status=${status}` : ""}`;
  const answer = await api("GET", `notification-handlers/${id}/deliveries?${query}`);
  const filter = h("select", { id: "attempt-status", onchange: (e) => attemptsSection(section, id, e.target.value, 1).catch(failed) },
    ...["", "delivered", "retrying", "failed", "skipped"].map((s) => h("option", { value: s, selected: s === status }, s || "any")));
  const pages = answer.meta.total_pages;
  replace(section, h("h3", { id: "attempts-title" }, "Attempts"),
    h("div", { class: "filters" }, h("label", { for: "attempt-status" }, "Status"), filter,
      h("button", { type: "button", onclick: () => attemptsSection(section, id, status, page).catch(failed) }, "Refresh")),
    answer.data.length === 0 ? h("p", {}, "No attempt yet.") : h("table", { class: "attempts" },
      h("thead", {}, h("tr", {}, ...["When", "Event", "Attempt", "Status", "HTTP", "Duration", "Error"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...answer.data.map((a) => h("tr", {},
        h("td", { "data-label": "When" }, when(a.datetime)),
        h("td", { "data-label": "Event" }, h("a", { href: `#event/${encodeURIComponent(a.event_id)}` }, a.event_type), " ", h("code", {}, a.event_id.slice(0, 8))),
        h("td", { "data-label": "Attempt" }, a.attempt),
        h("td", { "data-label": "Status" }, h("span", { class: `pill ${a.status}` }, a.status)),
        h("td", { "data-label": "HTTP" }, a.http_status ?? "–"),
        h("td", { "data-label": "Duration" }, `${a.duration_ms} ms`),
        h("td", { "data-label": "Error" }, a.error || ""))))),
    pages > 1 ? h("nav", { class: "pager", "aria-label": "Attempt pages" },
      h("button", { type: "button", disabled: page === 1, onclick: () => attemptsSection(section, id, status, page - 1).catch(failed) }, "Newer"),
      h("span", {}, `Page ${page} of ${pages}`),
      h("button", { type: "button", disabled: page >= pages, onclick: () => attemptsSection(section, id, status, page + 1).catch(failed) }, "Older")) : null);
}

// --- events ---------------------------------------------------------------------------------

async function eventsView() {
  const answer = await api("GET", "v1/events?results_per_page=50");
  show(heading("Events"), answer.data.length === 0 ? h("p", {}, "No event yet.") : h("table", { class: "events" },
    h("thead", {}, h("tr", {}, ...["When", "Type", "App", "Id"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...answer.data.map((e) => h("tr", {},
      h("td", { "data-label": "When" }, when(e.created_at)),
      h("td", { "data-label": "Type" }, h("a", { href: `#event/${encodeURIComponent(e.id)}` }, e.type)),
      h("td", { "data-label": "App" }, e.app || ""),
      h("td", { "data-label": "Id" }, h("code", {}, e.id)))))));
}

async function eventView(eventId) {
  const event = (await api("GET", `v1/events/${encodeURIComponent(eventId)}`)).data;
  const { deliveries, ...payload } = event;
  const names = new Map((state.handlers || []).map((handler) => [handler.id, handler.name]));
  const replay = (handlerId) => async (click) => {
    click.target.disabled = true;
    try {
      await api("POST", `v1/events/${encodeURIComponent(eventId)}/deliveries/${handlerId}/replay`);
      say(`Sent again to handler ${handlerId}.`);
      await eventView(eventId);
    } catch (error) { failed(error); click.target.disabled = false; }
  };
  show(heading(`Event ${event.type}`),
    h("p", {}, "Created ", when(event.created_at), event.app ? ` · app ${event.app}` : ""),
    h("h3", {}, "Deliveries"),
    deliveries.length === 0 ? h("p", {}, "It matched no handler.") : h("table", { class: "deliveries" },
      h("thead", {}, h("tr", {}, ...["Handler", "Status", "Attempts", "HTTP", "Error", "Next attempt", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...deliveries.map((d) => h("tr", {},
        h("td", { "data-label": "Handler" }, h("a", { href: `#handler/${d.handler_id}` }, names.get(d.handler_id) || `#${d.handler_id}`)),
        h("td", { "data-label": "Status" }, h("span", { class: `pill ${d.status}` }, d.status), d.dead_lettered ? " (dead-lettered)" : ""),
        h("td", { "data-label": "Attempts" }, d.attempts, d.replays ? ` (${d.replays} replays)` : ""),
        h("td", { "data-label": "HTTP" }, d.http_status ?? "–"),
        h("td", { "data-label": "Error" }, d.error || ""),
        h("td", { "data-label": "Next attempt" }, d.next_attempt_at ? when(d.next_attempt_at) : ""),
        h("td", {}, h("button", { type: "button", onclick: replay(d.handler_id), "aria-label": `Replay to handler ${d.handler_id}` }, "Replay")))))),
    h("h3", {}, "Payload"),
    h("p", { class: "hint" }, "The event as published; each destination receives it in its own format."),
    h("pre", { class: "payload", tabindex: "0", "aria-label": "The event as published" }, JSON.stringify(payload, null, 2)));
}

// --- the inbox ------------------------------------------------------------------------------

async function refreshUnread() {
  const answer = await api("GET", "notifications?results_per_page=10");
  document.getElementById("unread").textContent = answer.meta.unread ? String(answer.meta.unread) : "";
  return answer;
}

async function inboxView() {
  const answer = await api("GET", "notifications?results_per_page=50");
  document.getElementById("unread").textContent = answer.meta.unread ? String(answer.meta.unread) : "";
  show(heading(`Inbox (${answer.meta.unread} unread)`), answer.data.length === 0 ? h("p", {}, "Nothing here.") :
    h("ul", { class: "inbox" }, ...answer.data.map((n) => h("li", { class: n.read ? "read" : "unread" },
      h("h3", {}, n.title), h("p", {}, n.body), h("p", { class: "meta" }, when(n.datetime), n.read ? " · read" : " · unread"),
      n.read ? null : h("button", { type: "button", onclick: async () => {
        await api("POST", `notifications/${encodeURIComponent(n.id)}/read`).catch(failed);
        await inboxView();
      } }, "Mark as read")))));
}

// --- routing --------------------------------------------------------------------------------

function failed(error) {
  if (error?.status === 401) return;  // the page says the link no longer works
  if (!(error instanceof ApiError)) console.error(error);  // a bug of the page, not a refusal
  say(error.message || String(error), "error");
}

async function route() {
  statsCache.clear();
  routedHash = location.hash;
  const [view, arg] = location.hash.slice(1).split("/");
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.dataset.view === (["handler", "new", "edit", ""].includes(view) ? "handlers" : view === "event" ? "events" : view);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (view === "handler") await handlerView(Number(arg));
    else if (view === "new") show(heading("New handler"), handlerForm(null, (id, secret) => openHandler(id, secret)));
    else if (view === "edit") {
      const handler = (await api("GET", `notification-handlers/${Number(arg)}`)).data;
      show(heading(`Edit ${handler.name}`), handlerForm(handler, (id) => { location.hash = `#handler/${id}`; }));
    } else if (view === "event") await eventView(decodeURIComponent(arg));
    else if (view === "events") await eventsView();
    else if (view === "inbox") await inboxView();
    else await handlersView();
  } catch (error) { failed(error); }
}

function openHandler(id, secret) {
  history.pushState(null, "", `#handler/${id}`);
  routedHash = location.hash;
  handlerView(id, secret).catch(failed);
}

function refused(message) {
  forgetToken();
  document.querySelector("nav").hidden = true;
  replace(main, h("h2", { tabindex: "-1" }, "This link no longer works"), h("p", { id: "expired" }, message));
  main.querySelector("h2").focus();
}

unauthorized.addEventListener("refused", (event) => refused(event.detail));
if (!takeToken()) refused("Open the portal from the link the app gave you: this address holds no access.");
else {
  window.addEventListener("hashchange", route);
  route();
  refreshUnread().catch(failed);
}
