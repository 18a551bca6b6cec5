// Requests to the API, and the sign-in (only when the API requires keys).
// The key is sent once to POST /session; the server answers with an HttpOnly, Secure,
// SameSite=Strict cookie that the page cannot read. Nothing is kept in storage.
import { $, setConnection, setText } from "./dom.js";
import { state } from "./state.js";

export async function getJSON(path) {
  const answer = await fetch(path, { headers: { Accept: "application/json" } });
  if (answer.status === 401) {
    waitForSignIn("Your session ended: sign in again.").then(() => location.reload());
    throw new Error("signed out");
  }
  if (!answer.ok) throw new Error(path + " → HTTP " + answer.status);
  return answer.json();
}

function showSignIn(message) {
  if (state.source) state.source.close();
  $("signin").classList.remove("hidden");
  document.querySelector("main").classList.add("hidden");
  setText("signin-error", message || "");
  setConnection("wait", "signed out");
}

function waitForSignIn(message) {
  showSignIn(message || "");
  return new Promise((resolve) => {
    const attempt = async () => {
      const key = $("signin-key").value.trim();
      if (!key) return;
      const answer = await fetch("/session", {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ key }),
      });
      $("signin-key").value = "";
      if (!answer.ok) { setText("signin-error", answer.status === 429 ? "Too many attempts; wait a moment."
        : "That key was refused (unknown, revoked or mistyped)."); return; }
      $("signin").classList.add("hidden");
      document.querySelector("main").classList.remove("hidden");
      resolve();
    };
    $("signin-button").onclick = attempt;
    $("signin-key").onkeydown = (event) => { if (event.key === "Enter") attempt(); };
  });
}

export async function ensureSession() {
  const answer = await fetch("/session", { headers: { Accept: "application/json" } });
  const session = await answer.json();
  // With OIDC sign-in configured, a link to GET /session/oidc (the provider sends the browser back signed in).
  if (session.oidc_login) $("signin-oidc").classList.remove("hidden");
  if (session.auth && !session.signed_in) await waitForSignIn();
  if (session.auth) {
    const button = $("sign-out");
    button.classList.remove("hidden");
    button.onclick = async () => { await fetch("/session", { method: "DELETE" }); location.reload(); };
  }
}
