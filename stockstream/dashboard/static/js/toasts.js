// Toasts (errors, notifications from the notifier) and browser notifications.
import { $, el, setConnection } from "./dom.js";

export function toast(title, text, url) {
  const box = el("div", "toast");
  const close = el("button", "toast-close", "×");
  close.type = "button";
  close.addEventListener("click", () => box.remove());
  box.append(close, el("div", "toast-title", title), el("div", "toast-text", text));
  if (url) {
    try {
      const parsed = new URL(url, location.href);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") {
        const link = el("a", "", "details");
        link.href = parsed.href; link.rel = "noopener noreferrer"; link.target = "_blank";
        box.append(link);
      }
    } catch (_) { /* not a URL: no link */ }
  }
  $("toasts").prepend(box);
  setTimeout(() => box.remove(), 15000);
}

export function notify(body) {
  toast(String(body.title), String(body.text), typeof body.url === "string" ? body.url : null);
  if ("Notification" in window && Notification.permission === "granted") {
    try { new Notification(String(body.title), { body: String(body.text), tag: String(body.signal_id || "") }); }
    catch (_) { /* some browsers allow notifications only from a service worker */ }
  }
}

export function showError(error) {
  if (error && error.message === "signed out") return; // the sign-in panel says it
  setConnection("down", "error");
  toast("Could not load data", String(error && error.message ? error.message : error), null);
}
