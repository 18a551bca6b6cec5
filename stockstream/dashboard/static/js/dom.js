// Small DOM helpers. Every value from the system goes in with textContent (never innerHTML).

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function setText(id, value) { $(id).textContent = value; }

// The connection pill in the header: ok, wait, down or run.
export function setConnection(kind, text) {
  const pill = $("connection");
  pill.className = "pill pill-" + kind;
  pill.textContent = text;
}

export function fillSelect(select, values, current) {
  select.replaceChildren(...values.map((value) => {
    const option = el("option", "", value);
    option.value = value;
    option.selected = value === current;
    return option;
  }));
}
