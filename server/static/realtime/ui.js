// What the three test pages share, none of it protocol (that is the SDK's, /static/sdk/):
// the login form (the access token lives in this module only, never in storage), the
// credentials to hand to the SDK, the status line and the logs.
import { requestJson, ticketFrom } from '/static/sdk/index.js';

const MAX_LOG = 1000;
let accessToken = null;
let user = null;

export const $ = (id) => document.getElementById(id);
export const loggedIn = () => accessToken !== null;
export const currentUser = () => user;

/** REST calls with the access token: `requestJson(http, 'GET', path)`. */
export const http = { baseUrl: location.origin, auth: { token: () => accessToken } };

/** A socket or event stream takes a fresh single-use ticket on every (re)connection. */
export const ticket = ticketFrom(location.origin, () => accessToken);

/** `ws(s)://this-host<path>`. */
export const wsUrl = (path) => `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}`;

/** An SDK error (or any other) in a few words. */
export const describe = (error) => (error && error.code ? `${error.code}: ${error.message}` : String(error && error.message ? error.message : error));

export function setStatus(text, kind = 'info') {
  $('status').textContent = text;
  $('status').dataset.kind = kind;
}

/** Wires #login-form; `onLogin(user)` runs after a successful login. */
export function setupLogin(onLogin) {
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('login-button').disabled = true;
    setStatus('logging in…');
    try {
      const identifier = $('login-email').value.trim();
      const field = identifier.includes('@') ? 'email' : 'username';
      const body = { [field]: identifier, password: $('login-password').value };
      const result = await requestJson({ baseUrl: location.origin, auth: {} }, 'POST', '/auth/login', body);
      accessToken = result.tokens.access_token;
      user = result.user;
      $('login-password').value = '';
      $('whoami').textContent = `logged in as ${user.username} (user ${user.id})`;
      setStatus('logged in', 'ok');
      onLogin(user);
    } catch (error) {
      setStatus(describe(error), 'error');
    } finally {
      $('login-button').disabled = false;
    }
  });
}

/** One line in a log list (#log unless `list` says otherwise); `attrs` become data-*
 * attributes (the tests select on them). Scrolls the list, not the page. */
export function log(text, attrs = {}, list = $('log')) {
  const item = document.createElement('li');
  item.textContent = text;
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) item.dataset[key] = String(value);
  }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  list.append(item);
  while (list.childElementCount > MAX_LOG) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
  return item;
}

export function setupClearLog() {
  $('clear-log-button').addEventListener('click', () => $('log').replaceChildren());
}

/** A notification publication (docs/PROTOCOL.md, Notifications) in a few words, or null. */
export function notificationText(publication) {
  const event = publication && publication.data;
  if (!event || event.kind !== 'notification') return null;
  const target = event.user_id !== null && event.user_id !== undefined ? `user ${event.user_id}` : event.channel;
  const body = event.body ? `: ${event.body}` : '';
  return `notification #${event.id} for ${target} [${event.level}] ${event.title}${body}`;
}
