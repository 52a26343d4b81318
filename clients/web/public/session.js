// The signed-in session: the Api (api.js keeps its tokens in localStorage and refreshes them)
// and the screens around it: sign in, create an account, sign out. What happens once signed in
// or out is app.js's to say (startSession).

import { Api, ApiError } from "/api.js";

const $ = (id) => document.getElementById(id);

export const api = new Api(showSignIn);
let on = null; // { signedIn(user), signedOut() }, from startSession

function showSignIn() {
  on.signedOut();
  $("app").hidden = true;
  $("signin").hidden = false;
}

async function signedIn() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = api.user.displayName;
  api.scheduleRefresh();
  await on.signedIn(api.user);
}

function failed(error) {
  const detail = error instanceof ApiError && error.problem?.errors
    ? error.problem.errors.map((e) => `${e.field}: ${e.message}`).join("; ")
    : error.message;
  $("signin-error").textContent = detail;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api.login(form.get("login").trim(), form.get("password"));
    await signedIn();
  } catch (error) {
    failed(error);
  }
});

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api.register(form.get("username").trim(), form.get("email").trim(), form.get("password"));
    await signedIn();
  } catch (error) {
    failed(error);
  }
});

$("logout").addEventListener("click", async () => {
  await api.logout().catch(() => {});
  showSignIn();
});

// A kept session goes straight on; otherwise, or when it cannot, the sign-in screen.
export function startSession(handlers) {
  on = handlers;
  if (api.session) {
    signedIn().catch(showSignIn);
  } else {
    showSignIn();
  }
}
