// The REST side of the public API: a session (access and refresh token) kept in localStorage,
// refreshed a minute before the access token expires, and every call made with it.

const SESSION_KEY = "chat.session";
const REFRESH_AHEAD_MS = 60_000;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export class Api {
  constructor(onSignedOut) {
    this.session = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    this.onSignedOut = onSignedOut;
    this.refreshTimer = null;
    this.refreshing = null;
  }

  get token() {
    return this.session?.token;
  }

  get user() {
    return this.session?.user;
  }

  keep(result) {
    this.session = { token: result.token, refreshToken: result.refreshToken, expiresAt: result.expiresAt, user: result.user };
    localStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
    this.scheduleRefresh();
  }

  forget() {
    clearTimeout(this.refreshTimer);
    this.session = null;
    localStorage.removeItem(SESSION_KEY);
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (!this.session) return;
    const wait = Math.max(new Date(this.session.expiresAt).getTime() - Date.now() - REFRESH_AHEAD_MS, 1_000);
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), Math.min(wait, 2 ** 31 - 1));
  }

  async refresh() {
    if (!this.session) throw new ApiError(401, null);
    this.refreshing ??= this.send("POST", "/api/auth/refresh", { refreshToken: this.session.refreshToken }, false)
      .then((result) => this.keep(result))
      .catch((error) => {
        if (error.status === 401) this.signedOut();
        throw error;
      })
      .finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  signedOut() {
    this.forget();
    this.onSignedOut();
  }

  async register(username, email, password) {
    this.keep(await this.send("POST", "/api/auth/register", { username, email, password }, false));
  }

  async login(name, password) {
    const body = name.includes("@") ? { email: name, password } : { username: name, password };
    this.keep(await this.send("POST", "/api/auth/login", body, false));
  }

  async logout() {
    try {
      await this.call("POST", "/api/auth/logout");
    } finally {
      this.forget();
    }
  }

  // An authenticated call; a 401 is tried once more after a refresh.
  async call(method, path, body) {
    try {
      return await this.send(method, path, body, true);
    } catch (error) {
      if (error.status !== 401 || !this.session) throw error;
      await this.refresh();
      return this.send(method, path, body, true);
    }
  }

  async send(method, path, body, authenticated) {
    const headers = {};
    if (authenticated) headers.Authorization = `Bearer ${this.token}`;
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // Media bytes need the token too, so images are fetched and shown from a blob URL.
  async blobUrl(path) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${this.token}` } });
    if (!response.ok) throw new ApiError(response.status, null);
    return URL.createObjectURL(await response.blob());
  }
}
