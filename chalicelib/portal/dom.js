// Building the page from data without ever parsing it as HTML: every value is a text node.

/** An element with attributes (`on*` functions become listeners) and children (strings
 * become text nodes, null and false are skipped). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

let statusTimer = null;

/** A message in the polite live region, read by screen readers and cleared after a while. */
export function say(text, kind = "info") {
  const status = document.getElementById("status");
  status.className = kind;
  status.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { status.textContent = ""; }, 8000);
}

/** Resolves true if the person confirms `text` in the page's dialog (not window.confirm,
 * which an embedding page may block). */
export function confirmAction(text, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  return new Promise((resolve) => {
    const close = (answer) => () => { dialog.close(); resolve(answer); };
    document.getElementById("confirm-ok").onclick = close(true);
    document.getElementById("confirm-cancel").onclick = close(false);
    dialog.oncancel = close(false);
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

export function when(moment) {
  if (!moment) return "never";
  // The seed format ("2024-01-01 00:00:00") is UTC without a zone; ISO 8601 carries its offset.
  const parsed = new Date(/[zZ+]|-\d\d:\d\d$/.test(moment) ? moment : moment.replace(" ", "T") + "Z");
  return Number.isNaN(parsed.getTime()) ? moment : parsed.toLocaleString();
}

export function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 1000) / 10} %`;
}
