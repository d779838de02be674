// The handler form: the fields each type needs, from the same settings models the API uses
// (sent with the page), and the API's own refusals shown beside the fields they name.

import { api, ApiError } from "./api.js";
import { h, say } from "./dom.js";

export const TYPES = JSON.parse(document.getElementById("handler-types").textContent);
const LABELS = {
  name: "Name", app: "App (empty: every app)", is_enabled: "Enabled", send_all_events: "Send every event",
  send_all_alerts: "Send every alert", selected_event_ids: "Selected event types (comma-separated)",
  rate_limit_per_second: "Rate limit per second (empty: the platform's)",
};

function label(field) {
  return LABELS[field] || field.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
}

/** One labelled input with its error slot, named as the API names the field. */
function field(name, value, { type = "text", hint = null, required = false } = {}) {
  const id = `field-${name}`;
  const error = h("p", { class: "field-error", id: `${id}-error` });
  const described = [hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(" ");
  if (type === "checkbox") {
    const box = h("input", { type, id, name, checked: Boolean(value), "aria-describedby": described });
    return h("div", { class: "field check" }, box, h("label", { for: id }, label(name)), error);
  }
  const input = h("input", {
    type, id, name, value: value ?? "", required, autocomplete: "off", spellcheck: "false",
    "aria-describedby": described,
  });
  return h("div", { class: "field" },
    h("label", { for: id }, label(name), required ? h("span", { class: "required" }, " (required)") : null),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null, input, error);
}

function typeFields(type, settings) {
  const spec = TYPES[type];
  return [...spec.required, ...spec.optional].map((name) => field(name, settings[name], {
    type: spec.secret.includes(name) ? "password" : "text",
    required: spec.required.includes(name),
    hint: spec.secret.includes(name) && settings[name] ? "Stored; shown masked. Leave as is to keep it." :
      spec.url.includes(name) ? "A URL (https://…)" : null,
  }));
}

/** The body the API takes, by the API's field names: a new handler's filled fields, or the
 * fields an edit changed (a PATCH keeps the others, masked credentials included). */
function bodyOf(form, type, editing) {
  const body = editing ? {} : { type };
  for (const input of form.querySelectorAll("input")) {
    if (input.type === "checkbox") {
      if (!editing || input.checked !== input.defaultChecked) body[input.name] = input.checked;
    } else if (editing ? input.value !== input.defaultValue : input.value !== "") {
      body[input.name] = input.value;
    }
  }
  return body;
}

function showErrors(form, error) {
  for (const slot of form.querySelectorAll(".field-error, .form-error")) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  let first = null;
  for (const problem of error.errors) {
    const input = problem.field && form.querySelector(`[name="${CSS.escape(problem.field)}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      form.querySelector(`#field-${CSS.escape(problem.field)}-error`).textContent = problem.detail;
      first = first || input;
    } else {
      form.querySelector(".form-error").textContent = problem.detail || problem.title;
    }
  }
  (first || form.querySelector(".form-error")).focus?.();
}

/** The create (handler null) or edit form; `done(id, secret)` runs once the API accepted it. */
export function handlerForm(handler, done) {
  const editing = handler !== null;
  let type = editing ? handler.type : Object.keys(TYPES)[0];
  const settingsBox = h("fieldset", { class: "settings" });
  const legend = () => h("legend", {}, `${type.replaceAll("_", " ")} settings`);
  const fillSettings = () => settingsBox.replaceChildren(legend(), ...typeFields(type, editing ? handler.settings : {}));
  fillSettings();
  const typeSelect = h("select", { id: "field-type", name: "type", disabled: editing,
    onchange: (e) => { type = e.target.value; fillSettings(); } },
  ...Object.keys(TYPES).map((name) => h("option", { value: name, selected: name === type }, name.replaceAll("_", " "))));
  const form = h("form", { novalidate: true, class: "handler-form", "aria-label": editing ? "Edit handler" : "New handler" },
    h("div", { class: "field" }, h("label", { for: "field-type" }, "Type"), typeSelect,
      h("p", { class: "field-error", id: "field-type-error" })),
    field("name", editing ? handler.name : "", { required: true }),
    settingsBox,
    h("fieldset", {}, h("legend", {}, "What it receives"),
      field("app", editing ? handler.app : ""),
      field("send_all_events", editing ? handler.send_all_events : true, { type: "checkbox" }),
      field("send_all_alerts", editing ? handler.send_all_alerts : true, { type: "checkbox" }),
      field("selected_event_ids", editing ? handler.selected_event_ids.join(",") : ""),
      field("rate_limit_per_second", editing ? handler.rate_limit_per_second : "", { type: "text" }),
      field("is_enabled", editing ? handler.is_enabled : true, { type: "checkbox" })),
    h("p", { class: "form-error", role: "alert", tabindex: "-1" }),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create handler"),
      h("a", { href: editing ? `#handler/${handler.id}` : "#handlers", class: "button" }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const path = editing ? `notification-handlers/${handler.id}` : "notification-handlers";
      const answer = await api(editing ? "PATCH" : "POST", path, bodyOf(form, type, editing));
      say(editing ? "Saved." : "Handler created.");
      done(answer.data.id, answer.data.secret);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(form, error);
      say("Not saved: see the fields marked.", "error");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
