// The admin dashboard on the SDK (/static/sdk/) and the test pages' helpers (ui.js): log in,
// GET /admin/api/overview once, then subscribe to the admin-only channel `admin:dashboard`:
// every node publishes its overview there every 2 s while someone watches
// (handlers/admin_live.py), and every admin action is announced there (the page refreshes
// at once and logs who did what). The page merges the nodes' latest snapshots; when none has
// come for STALE_MS (Redis trouble) it polls the REST overview instead. Actions go to
// /admin/api/... .
import { RealtimeClient, requestJson } from '/static/sdk/index.js';
import { $, describe, http, log, setStatus, setupLogin, ticket, wsUrl } from '/static/realtime/ui.js';

const REFRESH_MS = 2000;
const STALE_MS = 5000;
const latest = new Map(); // node id -> {at (ms), overview}, from snapshots and REST answers
let lastSnapshot = 0;
const QUEUES = ['tasks', 'notifications.user', 'notifications.admin', 'orders', 'events.system'];
let client = null;
let timer = null;

const api = (method, path, body) => requestJson(http, method, path, body);
const ago = (seconds) => (seconds === null || seconds === undefined ? '–' : seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`);
const perSecond = (value) => (value === null ? '–' : Number(value < 10 ? value.toFixed(1) : Math.round(value)));

/** A counter's rate: (change since the last different sample) / (time between them). */
const samples = new Map(); // key -> {t, v, rate}
function rate(key, t, v) {
  const prev = samples.get(key);
  if (prev && t <= prev.t) return prev.rate;
  const computed = prev && v >= prev.v ? (v - prev.v) / (t - prev.t) : null;
  samples.set(key, { t, v, rate: computed });
  return computed;
}
const pairs = (object) => Object.entries(object || {}).map(([k, v]) => `${k} ${v}`).join(', ') || '–';

/** A table cell: text, a number (right-aligned) or a button. */
function cell(value) {
  const td = document.createElement('td');
  if (value instanceof HTMLElement) td.append(value);
  else {
    td.textContent = value === null || value === undefined ? '–' : String(value);
    if (typeof value === 'number') td.className = 'num';
  }
  return td;
}

function button(text, action, kind = 'secondary') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = kind;
  b.textContent = text;
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await action();
    } catch (error) {
      setStatus(describe(error), 'error');
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** Fill table #id with one row per item (`row(item)` gives the cells' values). */
function fill(id, items, row, empty) {
  const body = $(id).tBodies[0];
  const rows = items.map((item) => {
    const tr = document.createElement('tr');
    tr.append(...row(item).map(cell));
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell(empty);
    td.className = 'empty';
    td.colSpan = $(id).tHead.rows[0].cells.length;
    tr.append(td);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

// -- the overview ---------------------------------------------------------------------------

/** One view of every node's latest overview: the freshest for what all nodes share (node
 * reports, rooms, messaging), sums over nodes for channels, users, uploads and peers. */
function merged() {
  const now = Date.now();
  for (const [node, entry] of latest) if (now - entry.at > 3 * STALE_MS) latest.delete(node);
  const entries = [...latest.values()].sort((a, b) => b.at - a.at);
  const channels = new Map();
  const users = new Map();
  for (const { overview } of entries) {
    for (const c of overview.this_node.channels) channels.set(c.name, (channels.get(c.name) || 0) + c.subscribers);
    for (const u of overview.this_node.users) {
      const sum = users.get(u.user_id) || { user_id: u.user_id, connections: 0, transports: {} };
      sum.connections += u.connections;
      for (const [kind, n] of Object.entries(u.transports)) sum.transports[kind] = (sum.transports[kind] || 0) + n;
      users.set(u.user_id, sum);
    }
  }
  const sum = (pick) => entries.reduce((total, { overview }) => total + pick(overview.this_node), 0);
  const relayRates = entries.map(({ at, overview: { this_node: n } }) => rate(`relay ${n.node}`, at / 1000, n.relayed)).filter((r) => r !== null);
  return {
    ...entries[0].overview,
    relay_rate: relayRates.length ? relayRates.reduce((a, b) => a + b, 0) : null,
    recent_errors: entries.flatMap(({ overview: { this_node: n } }) => n.recent_errors.map((e) => ({ ...e, node: n.node }))).sort((a, b) => b.at - a.at),
    this_node: {
      node: entries.map((e) => e.overview.this_node.node).join(', '),
      channels: [...channels].map(([name, subscribers]) => ({ name, subscribers })).sort((a, b) => b.subscribers - a.subscribers),
      users: [...users.values()].sort((a, b) => b.connections - a.connections),
      uploads_in_progress: sum((n) => n.uploads_in_progress),
      peers: entries.flatMap((e) => e.overview.this_node.peers),
    },
  };
}

function show(overview, source) {
  latest.set(overview.this_node.node, { at: Date.now(), overview });
  render(merged());
  $('updated').textContent = `${source} at ${new Date().toLocaleTimeString()}`;
}

function render(o) {
  const now = Date.now() / 1000;
  fill('nodes', o.nodes, (n) => [n.node, n.connections, pairs(n.by_transport), n.users, n.channels, n.queued_messages,
    perSecond(rate(`pub ${n.node}`, n.at, n.published)), perSecond(rate(`del ${n.node}`, n.at, n.delivered)), ago(n.uptime_seconds)], 'no node reported');
  fill('channels', o.this_node.channels, (c) => [c.name, c.subscribers], 'no channel has a subscriber here');
  fill('users', o.this_node.users, (u) => [
    `user ${u.user_id}`, u.connections, pairs(u.transports),
    Object.assign(document.createElement('span'), { className: 'row' }),
  ], 'nobody is connected here');
  [...$('users').tBodies[0].rows].forEach((tr, i) => {
    const user = o.this_node.users[i];
    if (!user) return;
    tr.dataset.userId = user.user_id;
    tr.cells[3].firstChild.append(
      button('sessions', () => showSessions(user.user_id)),
      button('disconnect', () => disconnect(user.user_id), 'danger'),
    );
  });
  $('uploads').textContent = o.this_node.uploads_in_progress;
  $('peers').textContent = o.this_node.peers.length;
  fill('rooms', o.rooms, (r) => [r.name, `user ${r.owner_id}`, r.participants, button('close', () => closeRoom(r), 'danger')], 'no room');
  const m = o.messaging;
  $('messaging-status').textContent = m.status;
  $('messaging-status').dataset.kind = m.status === 'ok' ? 'ok' : 'error';
  $('outbox-backlog').textContent = m.outbox.backlog ?? '–';
  $('outbox-age').textContent = ago(m.outbox.oldest_age_seconds);
  $('relay-rate').textContent = perSecond(o.relay_rate);
  $('in-flight').textContent = m.queues.in_flight_total ?? '–';
  const queues = Object.entries(m.queues).filter(([, v]) => typeof v === 'object');
  fill('queues', queues, ([name, q]) => [name, q.ready, q.consumers, q.dead_letters], 'the broker did not answer');
  fill('workers', m.workers, (w) => [w.worker_id, w.consuming ? 'yes' : 'no', w.in_flight, w.processed,
    perSecond(rate(`worker ${w.worker_id}`, w.at, w.processed)), w.dead_lettered, `${ago(now - w.at)} ago`], 'no worker heartbeat');
  fill('errors', o.recent_errors.slice(0, 20), (e) => [new Date(e.at * 1000).toLocaleTimeString(), e.node, e.logger,
    e.exception ? `${e.message} (${e.exception})` : e.message], 'no error logged since the nodes started');
}

async function refresh() {
  try {
    show(await api('GET', '/admin/api/overview'), 'polled');
    // back to "live" after an error; an action's result (an "ok" status) stays readable
    if (client && client.connected && $('status').dataset.kind !== 'ok') setStatus('live', 'ok');
  } catch (error) {
    setStatus(describe(error), 'error');
    if (error.code === 'insufficient_role' || error.code === 'unauthorized') stop();
  }
}

// -- actions --------------------------------------------------------------------------------

async function disconnect(userId) {
  await api('POST', `/admin/api/users/${userId}/disconnect`);
  setStatus(`disconnected user ${userId}`, 'ok');
}

async function showSessions(userId) {
  const sessions = await api('GET', `/admin/api/users/${userId}/sessions`);
  $('sessions-user').textContent = userId;
  $('sessions-box').hidden = false;
  fill('sessions', sessions, (s) => [s.id.slice(0, 8), new Date(s.last_used_at).toLocaleString(), s.user_agent || s.ip,
    button('revoke', async () => { await api('POST', `/admin/api/sessions/${s.id}/revoke`); await showSessions(userId); }, 'danger')], 'no live session');
}

async function closeRoom(room) {
  if (!window.confirm(`Close room "${room.name}"? Nobody can join it any more.`)) return;
  await api('DELETE', `/admin/api/rooms/${room.id}`);
}

// -- dead letters ---------------------------------------------------------------------------

const deadQueue = () => $('dead-queue').value || undefined;

async function loadDead() {
  const query = deadQueue() ? `?queue=${encodeURIComponent(deadQueue())}` : '';
  const { queues } = await api('GET', `/admin/api/dead-letters${query}`);
  const rows = Object.entries(queues).flatMap(([queue, q]) => q.messages.map((m) => ({ queue, ...m })));
  fill('dead', rows, (m) => [m.queue, m.message_id, m.type, m.error, m.attempts, Object.assign(document.createElement('span'), { className: 'row' })], 'no dead letter');
  [...$('dead').tBodies[0].rows].forEach((tr, i) => {
    const m = rows[i];
    if (!m) return;
    tr.dataset.messageId = m.message_id;
    tr.cells[5].firstChild.append(
      button('show', async () => {
        const detail = await api('GET', `/admin/api/dead-letters/messages/${encodeURIComponent(m.message_id)}?queue=${encodeURIComponent(m.queue)}`);
        $('dead-detail').hidden = false;
        $('dead-detail').textContent = JSON.stringify(detail, null, 2);
      }),
      button('requeue', async () => {
        const { count } = await api('POST', '/admin/api/dead-letters/requeue', { queue: m.queue, message_id: m.message_id });
        setStatus(`requeued ${count} message(s)`, 'ok');
        await loadDead();
      }),
    );
  });
}

function setupDeadLetters() {
  for (const queue of QUEUES) $('dead-queue').append(new Option(queue, queue));
  $('dead-queue').addEventListener('change', () => loadDead().catch((e) => setStatus(describe(e), 'error')));
  $('dead-refresh').addEventListener('click', () => loadDead().catch((e) => setStatus(describe(e), 'error')));
  $('dead-requeue-all').addEventListener('click', async () => {
    const { count } = await api('POST', '/admin/api/dead-letters/requeue', { queue: deadQueue() });
    setStatus(`requeued ${count} message(s)`, 'ok');
    await loadDead();
  });
  $('dead-purge').addEventListener('click', async () => {
    const which = deadQueue() || 'every queue';
    if (!window.confirm(`Delete the dead letters of ${which} for good?`)) return;
    const { count } = await api('POST', '/admin/api/dead-letters/purge', { queue: deadQueue() });
    setStatus(`purged ${count} message(s)`, 'ok');
    await loadDead();
  });
}

// -- live -----------------------------------------------------------------------------------

function describeAction(event) {
  const what = {
    disconnected: () => `disconnected user ${event.user_id}`,
    session_revoked: () => `revoked a session of user ${event.user_id}`,
    room_closed: () => `closed room ${event.room_id}`,
    requeued: () => `requeued ${event.count} dead letter(s)`,
    purged: () => `purged ${event.count} dead letter(s)${event.queue ? ` of ${event.queue}` : ''}`,
  }[event.action];
  return `${new Date(event.at * 1000).toLocaleTimeString()} admin ${event.by} ${what ? what() : event.action}`;
}

async function start() {
  await refresh();
  if ($('status').dataset.kind === 'error') return;
  for (const section of document.querySelectorAll('[data-admin]')) section.hidden = false;
  $('login-section').hidden = true;
  client = window.client = new RealtimeClient({ url: wsUrl('/realtime/ws'), auth: { ticket } });
  client.on('disconnected', ({ code }) => setStatus(`connection lost (close ${code}): reconnecting…`, 'error'));
  await client.connect();
  const channel = await client.subscribe('admin:dashboard');
  channel.on('publication', (p) => {
    const event = p.data || {};
    if (event.kind === 'snapshot') {
      lastSnapshot = Date.now();
      show(event.overview, `live snapshot from node ${event.node}`);
      setStatus('live', 'ok');
    } else if (event.kind === 'admin_action') {
      log(describeAction(event), { action: event.action });
      refresh();
    }
  });
  await Promise.all([refresh(), loadDead()]);
  timer = setInterval(() => Date.now() - lastSnapshot > STALE_MS && refresh(), REFRESH_MS);
}

function stop() {
  clearInterval(timer);
  timer = null;
  if (client) client.close();
  client = null;
}

setupDeadLetters();
setupLogin(() => start().catch((error) => setStatus(describe(error), 'error')));
