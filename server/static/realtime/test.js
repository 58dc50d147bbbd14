// /realtime/test on the SDK (/static/sdk/): log in, connect with a ticket, subscribe,
// publish, presence, binary messages and a resumable upload. The SDK's `trace` event feeds
// the protocol log. `client` is on `window` for the console.
// ?chunkDelayMs=N reads each chunk of a file N ms late (to watch an upload, or drop it midway).
import { RealtimeClient } from '/static/sdk/index.js';
import { $, describe, log, loggedIn, notificationText, setStatus, setupClearLog, setupLogin, ticket, wsUrl } from './ui.js';

const chunkDelayMs = Math.max(0, Number(new URLSearchParams(location.search).get('chunkDelayMs')) || 0);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let client = null;
let uploading = false;

function updateButtons() {
  const open = client !== null && client.connected;
  $('connect-button').disabled = !loggedIn() || client !== null;
  $('drop-button').disabled = !open;
  $('close-button').disabled = client === null;
  for (const id of ['subscribe-button', 'unsubscribe-button', 'presence-button', 'publish-button', 'binary-button']) {
    $(id).disabled = !open;
  }
  $('send-file-button').disabled = !open || uploading || $('file-input').files.length === 0;
}

// -- connection ---------------------------------------------------------------------------

async function connect() {
  if (client !== null) return;
  const created = new RealtimeClient({ url: wsUrl('/realtime/ws'), auth: { ticket } });
  client = window.client = created;
  created.on('trace', ({ direction, frame }) => log(JSON.stringify(frame), { dir: direction, type: frame.type, channel: frame.channel }));
  created.on('connected', (hello) => {
    $('connected').textContent = JSON.stringify(hello);
    setStatus(`connected as user ${hello.user_id}${hello.reconnected ? ' (reconnected)' : ''}`, 'ok');
    updateButtons();
  });
  created.on('disconnected', ({ code, reason }) => {
    setStatus(`disconnected (code ${code}${reason ? `: ${reason}` : ''}): reconnecting…`, 'error');
    log(`connection lost (close ${code})`, { type: 'info' });
    if (uploading) $('upload-status').textContent = 'connection lost: the upload resumes after the reconnect';
    updateButtons();
  });
  created.on('reconnecting', ({ attempt, delayMs }) => log(`reconnect attempt ${attempt} in ${Math.round(delayMs)} ms`, { type: 'info' }));
  created.on('closed', (error) => {
    if (client === created) client = null;
    $('connected').textContent = '–';
    renderSubscriptions();
    setStatus(`closed: ${describe(error)}`, 'error');
    updateButtons();
  });
  created.on('error', (error) => setStatus(`error ${describe(error)}`, 'error'));
  created.on('binary', ({ header, data }) => {
    const text = new TextDecoder().decode(data.subarray(0, 200));
    $('binary-received').textContent = `${header.mime}, ${data.length} bytes${header.channel ? ` on ${header.channel}` : ' (echo)'}: ${text}`;
    log(`binary ${JSON.stringify(header)} + ${data.length} bytes`, { dir: 'in', type: 'binary' });
  });
  updateButtons();
  setStatus('connecting…');
  try {
    await created.connect();
  } catch (error) {
    setStatus(`could not connect: ${describe(error)}`, 'error');
  }
  updateButtons();
}

// -- channels -----------------------------------------------------------------------------

const channelName = () => $('channel').value.trim();

function renderSubscriptions() {
  const names = client ? [...client.channels.keys()] : [];
  $('subscriptions').textContent = names.length ? names.join(', ') : 'none';
}

async function subscribe() {
  const name = channelName();
  try {
    const channel = await client.subscribe(name);
    channel.on('publication', (publication) => {
      const text = notificationText(publication);
      if (text) log(text, { type: 'notification', channel: name });
    });
    channel.on('join', () => showPresence(name, false));
    channel.on('leave', () => showPresence(name, false));
    channel.on('gap', ({ cursor }) => log(`${name}: publications were lost; going on from ${cursor}`, { type: 'error' }));
    channel.on('error', (error) => setStatus(`${name}: ${describe(error)}`, 'error'));
    renderSubscriptions();
    if (name.startsWith('public:')) await showPresence(name, true); // presence exists there
  } catch (error) {
    setStatus(`subscribe: ${describe(error)}`, 'error');
  }
}

async function unsubscribe() {
  try {
    await client.unsubscribe(channelName());
  } catch (error) {
    setStatus(`unsubscribe: ${describe(error)}`, 'error');
  }
  renderSubscriptions();
}

// Refreshed on join/leave only while that channel is the one shown.
async function showPresence(name, asked) {
  if (!asked && $('presence-channel').textContent !== name) return;
  try {
    const members = await client.presence(name);
    $('presence-channel').textContent = name;
    $('presence').replaceChildren(...members.map((member) => {
      const item = document.createElement('li');
      item.textContent = `user ${member.user_id} (${member.transport}, client ${member.client_id})`;
      return item;
    }));
  } catch (error) {
    setStatus(`presence: ${describe(error)}`, 'error');
  }
}

async function publish() {
  let data;
  try {
    data = JSON.parse($('publish-data').value);
  } catch (error) {
    setStatus(`publish data is not JSON: ${error.message}`, 'error');
    return;
  }
  try {
    const ack = await client.publish(channelName(), data);
    setStatus(`published at ${ack.cursor}`, 'ok');
  } catch (error) {
    setStatus(`publish: ${describe(error)}`, 'error');
  }
}

async function sendBinary() {
  const bytes = new TextEncoder().encode($('binary-text').value);
  const options = { mime: 'text/plain', filename: 'message.txt' };
  if ($('binary-to-channel').checked) options.channel = channelName();
  log(`binary ${JSON.stringify(options)} + ${bytes.length} bytes`, { dir: 'out', type: 'binary' });
  try {
    await client.sendBinary(bytes, options);
  } catch (error) {
    setStatus(`binary: ${describe(error)}`, 'error');
  }
}

// -- file upload --------------------------------------------------------------------------

// The file, read `delayMs` late chunk by chunk (the SDK reads a Blob with slice().arrayBuffer()).
const slowly = (file, delayMs) => ({
  size: file.size,
  type: file.type,
  arrayBuffer: () => file.arrayBuffer(),
  slice: (start, end) => ({ arrayBuffer: async () => (await sleep(delayMs), file.slice(start, end).arrayBuffer()) }),
});

function showProgress({ loaded, total, resumes }) {
  const percent = total === 0 ? 100 : Math.floor((loaded * 100) / total);
  $('progress').value = percent;
  const again = resumes ? `, resumed ${resumes}×` : '';
  $('progress-text').textContent = `${percent}% (${loaded} / ${total} bytes${again})`;
}

async function sendFile() {
  const file = $('file-input').files[0];
  if (!file || uploading) return;
  uploading = true;
  updateButtons();
  $('download-link').removeAttribute('href');
  $('download-link').textContent = '–';
  $('file-sha256').textContent = '';
  $('upload-status').textContent = `hashing and sending ${file.name} (${file.size} bytes)…`;
  showProgress({ loaded: 0, total: file.size, resumes: 0 });
  try {
    const done = await client.upload(chunkDelayMs ? slowly(file, chunkDelayMs) : file, {
      name: file.name || 'file',
      mime: /^[\w.+-]+\/[\w.+-]+$/.test(file.type) ? file.type : 'application/octet-stream',
      onUploadId: (id) => { $('upload-status').textContent = `uploading ${id}`; },
      onProgress: (progress) => {
        showProgress(progress);
        if (progress.resumes) $('upload-status').textContent = `resumed after a lost connection (${progress.resumes}×)`;
      },
    });
    $('upload-status').textContent = `done: ${done.name}, ${done.size} bytes, sha256 matches`;
    $('file-sha256').textContent = done.sha256;
    const link = $('download-link');
    link.textContent = done.name;
    link.setAttribute('download', done.name);
    link.href = `${done.url}?ticket=${encodeURIComponent(await ticket())}`;
  } catch (error) {
    $('upload-status').textContent = `upload failed: ${describe(error)}`;
  } finally {
    uploading = false;
    updateButtons();
  }
}

// -- wiring -------------------------------------------------------------------------------

setupLogin(updateButtons);
setupClearLog();
$('connect-button').addEventListener('click', connect);
$('drop-button').addEventListener('click', () => client && client.reconnect());
$('close-button').addEventListener('click', () => client && client.close());
$('subscribe-button').addEventListener('click', subscribe);
$('unsubscribe-button').addEventListener('click', unsubscribe);
$('presence-button').addEventListener('click', () => showPresence(channelName(), true));
$('publish-button').addEventListener('click', publish);
$('binary-button').addEventListener('click', sendBinary);
$('file-input').addEventListener('change', updateButtons);
$('send-file-button').addEventListener('click', sendFile);
updateButtons();
