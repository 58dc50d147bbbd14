// /realtime/test: a WebSocket client for the hub protocol (docs/PROTOCOL.md):
// subscribe, publish, presence, and resumable file uploads with credit-based flow control.
// ?chunkDelayMs=N waits N ms after each chunk (to slow uploads down for testing).
'use strict';

const { $, log, setStatus } = RT;
const CHUNK = 0x01; // binary frame kind: 0x01 | upload id (16 bytes) | offset (uint64 BE) | bytes
const MESSAGE = 0x02; // 0x02 | header length (uint16 BE) | JSON header | bytes
const chunkDelayMs = Math.max(0, Number(new URLSearchParams(location.search).get('chunkDelayMs')) || 0);

let ws = null;
let nextId = 1;
const subscribed = new Set();
// The current upload: {file, name, mime, size, sha256, id, idBytes, acked, sent, chunkSize,
// window, socket (the one it may send on; null while paused or resuming), gen, ending, done}
let upload = null;

const isOpen = () => ws !== null && ws.readyState === WebSocket.OPEN;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function send(message) {
  if (!isOpen()) {
    setStatus('not connected', 'error');
    return false;
  }
  ws.send(JSON.stringify(message));
  log(`→ ${JSON.stringify(message)}`, { dir: 'out', type: message.type });
  return true;
}

function updateButtons() {
  const loggedIn = RT.loggedIn();
  const open = isOpen();
  $('connect-button').disabled = !loggedIn || ws !== null;
  $('drop-button').disabled = ws === null;
  for (const id of ['subscribe-button', 'unsubscribe-button', 'presence-button', 'publish-button']) {
    $(id).disabled = !open;
  }
  const uploading = upload !== null && !upload.done && upload.socket === ws;
  $('send-file-button').disabled = !open || uploading || $('file-input').files.length === 0;
  $('resume-button').disabled = !open || !upload || !upload.id || upload.done || upload.socket === ws;
}

// -- connection ---------------------------------------------------------------------------

async function connect() {
  if (ws !== null) return;
  $('connect-button').disabled = true;
  try {
    setStatus('getting a ticket…');
    const ticket = await RT.ticket();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/realtime/ws?ticket=${encodeURIComponent(ticket)}`);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    setStatus('connecting…');
    socket.addEventListener('open', () => updateButtons());
    socket.addEventListener('message', (event) => {
      if (ws === socket) onFrame(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (ws === socket) closed(`closed by the server or network (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`);
    });
  } catch (error) {
    setStatus(error.message, 'error');
  }
  updateButtons();
}

// The socket is gone: forget channel state; an upload in progress waits for a resume.
function closed(why) {
  ws = null;
  subscribed.clear();
  renderSubscriptions();
  $('connected').textContent = '–';
  setStatus(`disconnected: ${why}`, 'error');
  log(`-- ${why}`, { type: 'closed' });
  if (upload && !upload.done) {
    upload.socket = null;
    upload.gen += 1;
    if (upload.id) setUploadStatus(`paused at ${upload.acked} of ${upload.size} bytes: connect, then resume`);
  }
  updateButtons();
}

function drop() {
  if (ws === null) return;
  const socket = ws;
  closed('dropped by the page');
  socket.close(1000, 'dropped by the page');
}

// -- incoming frames ----------------------------------------------------------------------

// A notification gets a readable line of its own under its publication.
function logNotification(publication) {
  const text = RT.notificationText(publication);
  if (text) log(`   ${text}`, { type: 'notification', channel: publication.channel });
}

function onFrame(data) {
  if (data instanceof ArrayBuffer) {
    onBinary(data);
    return;
  }
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    log(`← (not JSON) ${data}`, { dir: 'in', type: 'unparsable' });
    return;
  }
  log(`← ${data}`, { dir: 'in', type: frame.type, channel: frame.channel });
  if (frame.type === 'publication') logNotification(frame);
  switch (frame.type) {
    case 'connected':
      $('connected').textContent = JSON.stringify(frame);
      setStatus(`connected as user ${frame.user_id}`, 'ok');
      break;
    case 'subscribed':
      subscribed.add(frame.channel);
      renderSubscriptions();
      for (const publication of frame.publications || []) {
        log(`← (recovered) ${JSON.stringify(publication)}`, { dir: 'in', type: 'publication', channel: frame.channel });
        logNotification(publication);
      }
      requestPresence(frame.channel);
      break;
    case 'unsubscribed':
      subscribed.delete(frame.channel);
      renderSubscriptions();
      break;
    case 'join':
    case 'leave':
      if (frame.channel === $('presence-channel').textContent) requestPresence(frame.channel);
      break;
    case 'presence':
      renderPresence(frame.channel, frame.members);
      break;
    case 'file.ready':
      onFileReady(frame);
      break;
    case 'file.ack':
      onFileAck(frame);
      break;
    case 'file.done':
      onFileDone(frame);
      break;
    case 'error':
      if (typeof frame.ref === 'string' && (frame.ref.startsWith('file') || frame.ref === 'binary')) {
        onFileError(frame);
      } else {
        setStatus(`error ${frame.code}: ${frame.message}`, 'error');
      }
      break;
    default:
      break;
  }
}

function onBinary(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== MESSAGE || bytes.length < 3) {
    log(`← binary frame of ${bytes.length} bytes (kind ${bytes[0]})`, { dir: 'in', type: 'binary' });
    return;
  }
  const length = new DataView(buffer).getUint16(1);
  const header = new TextDecoder().decode(bytes.subarray(3, 3 + length));
  log(`← binary message ${header} + ${bytes.length - 3 - length} bytes`, { dir: 'in', type: 'binary' });
}

// -- channels -----------------------------------------------------------------------------

const channelName = () => $('channel').value.trim();

function renderSubscriptions() {
  $('subscriptions').textContent = subscribed.size ? [...subscribed].join(', ') : 'none';
}

// Automatic requests (after subscribing, on join/leave) only where presence exists.
function requestPresence(channel, asked = false) {
  if (asked || channel.startsWith('public:')) send({ type: 'presence', channel, id: nextId++ });
}

function renderPresence(channel, members) {
  $('presence-channel').textContent = channel;
  $('presence').replaceChildren(
    ...members.map((member) => {
      const item = document.createElement('li');
      item.textContent = `user ${member.user_id} (${member.transport}, client ${member.client_id})`;
      return item;
    }),
  );
}

function publish() {
  let data;
  try {
    data = JSON.parse($('publish-data').value);
  } catch (error) {
    setStatus(`publish data is not JSON: ${error.message}`, 'error');
    return;
  }
  send({ type: 'publish', channel: channelName(), data, id: nextId++ });
}

// -- file uploads -------------------------------------------------------------------------

function setUploadStatus(text) {
  $('upload-status').textContent = text;
}

function showProgress() {
  const percent = upload.size === 0 ? 100 : Math.floor((upload.acked * 100) / upload.size);
  $('progress').value = percent;
  $('progress-text').textContent = `${percent}% (${upload.acked} / ${upload.size} bytes)`;
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

function uuidBytes(uuid) {
  const digits = uuid.replace(/-/g, '');
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(digits.substr(i * 2, 2), 16));
}

function chunkFrame(idBytes, offset, bytes) {
  const frame = new Uint8Array(25 + bytes.byteLength);
  frame[0] = CHUNK;
  frame.set(idBytes, 1);
  new DataView(frame.buffer).setBigUint64(17, BigInt(offset), false);
  frame.set(new Uint8Array(bytes), 25);
  return frame.buffer;
}

function fileBegin(extra = {}) {
  return send({
    type: 'file.begin',
    id: 'file.begin',
    name: upload.name,
    mime: upload.mime,
    size: upload.size,
    sha256: upload.sha256,
    ...extra,
  });
}

async function sendFile() {
  const file = $('file-input').files[0];
  if (!file || !isOpen()) return;
  $('send-file-button').disabled = true;
  $('download-link').removeAttribute('href');
  $('download-link').textContent = '–';
  $('file-sha256').textContent = '';
  setUploadStatus(`hashing ${file.name}…`);
  const sha256 = hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  const mime = /^[\w.+-]+\/[\w.+-]+$/.test(file.type) ? file.type : 'application/octet-stream';
  upload = {
    file, name: file.name || 'file', mime, size: file.size, sha256, id: null, idBytes: null,
    acked: 0, sent: 0, chunkSize: 0, window: 0, socket: ws, gen: 0, ending: false, done: false,
  };
  showProgress();
  setUploadStatus(`starting ${upload.name} (${upload.size} bytes, sha256 ${sha256})`);
  fileBegin();
  updateButtons();
}

function resume() {
  if (!upload || !upload.id || upload.done || !isOpen()) return;
  upload.socket = null; // send nothing until file.ready says where to continue
  upload.gen += 1;
  setUploadStatus(`resuming ${upload.id}…`);
  fileBegin({ upload_id: upload.id });
  $('resume-button').disabled = true;
}

function onFileReady(frame) {
  if (!upload || (upload.id && frame.upload_id !== upload.id)) return;
  upload.id = frame.upload_id;
  upload.idBytes = uuidBytes(frame.upload_id);
  upload.acked = upload.sent = frame.offset;
  upload.chunkSize = frame.chunk_size;
  upload.window = frame.window;
  upload.socket = ws;
  upload.gen += 1;
  upload.ending = false;
  showProgress();
  setUploadStatus(`uploading ${upload.id} from offset ${frame.offset}`);
  updateButtons();
  if (upload.acked >= upload.size) finish();
  else pump();
}

// Send chunks while the credit window allows; file.ack frames call this again.
async function pump() {
  const u = upload;
  if (!u || u.pumping) return;
  u.pumping = true;
  try {
    while (upload === u && !u.done && u.socket !== null && u.socket === ws && isOpen() && u.sent < u.size) {
      const offset = u.sent;
      const length = Math.min(u.chunkSize, u.size - offset);
      if (offset > u.acked && offset + length - u.acked > u.window) break; // wait for acks
      const gen = u.gen;
      const bytes = await u.file.slice(offset, offset + length).arrayBuffer();
      if (gen !== u.gen || u.sent !== offset || u.socket !== ws || !isOpen()) continue;
      ws.send(chunkFrame(u.idBytes, offset, bytes));
      u.sent = offset + length;
      if (chunkDelayMs) await sleep(chunkDelayMs);
    }
  } finally {
    u.pumping = false;
  }
}

function onFileAck(frame) {
  const u = upload;
  if (!u || frame.upload_id !== u.id || u.socket !== ws) return;
  u.acked = Math.max(u.acked, frame.offset);
  showProgress();
  if (u.acked >= u.size) finish();
  else pump();
}

function finish() {
  if (upload.ending) return;
  upload.ending = true;
  setUploadStatus(`all ${upload.size} bytes acknowledged; finishing`);
  send({ type: 'file.end', id: 'file.end', upload_id: upload.id });
}

async function onFileDone(frame) {
  if (!upload || frame.file_id !== upload.id) return;
  upload.done = true;
  upload.acked = upload.size;
  showProgress();
  updateButtons();
  const ok = frame.sha256 === upload.sha256;
  setUploadStatus(`done: ${frame.name}, ${frame.size} bytes, sha256 ${ok ? 'matches' : 'DIFFERS'}`);
  $('file-sha256').textContent = frame.sha256;
  const link = $('download-link');
  link.textContent = frame.name;
  link.setAttribute('download', frame.name);
  try {
    link.href = `${frame.url}?ticket=${encodeURIComponent(await RT.ticket())}`;
  } catch (error) {
    setStatus(`could not get a download ticket: ${error.message}`, 'error');
  }
}

function onFileError(frame) {
  const u = upload;
  if (!u) return;
  const expected = frame.details && frame.details.expected;
  if (frame.code === 'offset_mismatch' && typeof expected === 'number') {
    u.acked = u.sent = expected; // continue where the server is
    u.gen += 1;
    pump();
    return;
  }
  setUploadStatus(`upload error ${frame.code}: ${frame.message}`);
  if (['sha256_mismatch', 'too_large', 'quota_exceeded', 'upload_finished'].includes(frame.code)) {
    u.done = true;
    u.socket = null;
  }
  updateButtons();
}

// -- wiring -------------------------------------------------------------------------------

RT.setupLogin(() => updateButtons());
RT.setupClearLog();
$('connect-button').addEventListener('click', connect);
$('drop-button').addEventListener('click', drop);
$('subscribe-button').addEventListener('click', () => send({ type: 'subscribe', channel: channelName(), id: nextId++ }));
$('unsubscribe-button').addEventListener('click', () => send({ type: 'unsubscribe', channel: channelName(), id: nextId++ }));
$('presence-button').addEventListener('click', () => requestPresence(channelName(), true));
$('publish-button').addEventListener('click', publish);
$('file-input').addEventListener('change', updateButtons);
$('send-file-button').addEventListener('click', () => sendFile().catch((error) => setUploadStatus(`failed: ${error.message}`)));
$('resume-button').addEventListener('click', resume);
updateButtons();
