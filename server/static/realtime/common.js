// Shared by /realtime/test, /realtime/sse-test and /realtime/webrtc/test: logging in (the
// access token lives in this closure only, never in storage), single-use tickets, the status
// line and the log.
'use strict';

const RT = (() => {
  let accessToken = null;
  let user = null;
  const MAX_LOG = 1000;

  const $ = (id) => document.getElementById(id);

  function setStatus(text, kind = 'info') {
    const status = $('status');
    status.textContent = text;
    status.dataset.kind = kind;
  }

  // A JSON request to this origin; the access token goes in the Authorization header.
  async function api(method, path, body) {
    const headers = {};
    if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!response.ok) {
      const error = data && data.error;
      const why = error ? `${error.code}: ${error.message}` : text;
      throw new Error(`${method} ${path}: ${response.status} ${why}`);
    }
    return data;
  }

  async function login(identifier, password) {
    const field = identifier.includes('@') ? 'email' : 'username';
    const result = await api('POST', '/auth/login', { [field]: identifier, password });
    accessToken = result.tokens.access_token;
    user = result.user;
    return user;
  }

  // WebSocket, EventSource and download links cannot send headers: they take a ticket.
  async function ticket() {
    return (await api('POST', '/auth/ws-ticket')).ticket;
  }

  // Wires #login-form; `onLogin(user)` runs after a successful login.
  function setupLogin(onLogin) {
    $('login-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const button = $('login-button');
      button.disabled = true;
      setStatus('logging in…');
      try {
        const who = await login($('login-email').value.trim(), $('login-password').value);
        $('login-password').value = '';
        $('whoami').textContent = `logged in as ${who.username} (user ${who.id})`;
        setStatus('logged in', 'ok');
        onLogin(who);
      } catch (error) {
        setStatus(error.message, 'error');
      } finally {
        button.disabled = false;
      }
    });
  }

  // One line in #log; `attrs` become data-* attributes the tests select on.
  function log(text, attrs = {}) {
    const list = $('log');
    const item = document.createElement('li');
    item.textContent = text;
    for (const [key, value] of Object.entries(attrs)) {
      if (value !== undefined && value !== null) item.dataset[key] = String(value);
    }
    list.append(item);
    while (list.childElementCount > MAX_LOG) list.firstElementChild.remove();
    item.scrollIntoView({ block: 'nearest' });
    return item;
  }

  // The notification event a publication carries (docs/PROTOCOL.md, Notifications), in a
  // few words for the log; null when the publication is not a notification.
  function notificationText(publication) {
    const event = publication && publication.data;
    if (!event || event.kind !== 'notification') return null;
    const target = event.user_id !== null && event.user_id !== undefined ? `user ${event.user_id}` : event.channel;
    const body = event.body ? `: ${event.body}` : '';
    return `notification #${event.id} for ${target} [${event.level}] ${event.title}${body}`;
  }

  function setupClearLog() {
    $('clear-log-button').addEventListener('click', () => $('log').replaceChildren());
  }

  return {
    $,
    api,
    log,
    login,
    notificationText,
    setStatus,
    setupClearLog,
    setupLogin,
    ticket,
    loggedIn: () => accessToken !== null,
    user: () => user,
  };
})();
