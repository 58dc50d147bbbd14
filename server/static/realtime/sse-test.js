// /realtime/sse-test: an EventSource on /realtime/events with a live log, disconnect, and
// resume from the last event id (?since=, since a new EventSource cannot set Last-Event-ID).
'use strict';

const { $, log, setStatus } = RT;
const EVENTS = ['connected', 'publication', 'join', 'leave', 'recovery-failed', 'close'];

let source = null;
let stream = 0; // numbers the streams opened, so the log tells them apart (data-stream)
let lastId = '';

function updateButtons() {
  const loggedIn = RT.loggedIn();
  $('connect-button').disabled = !loggedIn || source !== null;
  $('disconnect-button').disabled = source === null;
  $('resume-button').disabled = !loggedIn || source !== null || !lastId;
  $('last-id').textContent = lastId || '–';
}

async function open(since) {
  stop();
  $('connect-button').disabled = true;
  $('resume-button').disabled = true;
  try {
    const params = new URLSearchParams({ channels: $('channels').value.trim(), ticket: await RT.ticket() });
    if (since) params.set('since', since);
    const es = new EventSource(`/realtime/events?${params}`);
    const number = ++stream;
    source = es;
    log(`-- stream ${number}: ${since ? `resuming since ${since}` : 'connecting'}`, { event: 'info', stream: number });
    setStatus('connecting…');
    es.addEventListener('open', () => {
      if (source === es) setStatus(`stream ${number} open`, 'ok');
    });
    for (const name of EVENTS) es.addEventListener(name, (event) => onEvent(es, number, name, event));
    es.addEventListener('message', (event) => onEvent(es, number, 'message', event));
    // `error` is both an event the server may send (a MessageEvent with data) and how
    // EventSource reports a broken connection (a plain Event).
    es.addEventListener('error', (event) => {
      if (event instanceof MessageEvent) onEvent(es, number, 'error', event);
      else if (source === es) lost(number);
    });
  } catch (error) {
    setStatus(error.message, 'error');
  }
  updateButtons();
}

function onEvent(es, number, name, event) {
  if (source !== es) return;
  // lastEventId sticks from the previous event; only publications carry their own id.
  const id = name === 'publication' ? event.lastEventId : '';
  if (id) lastId = id;
  log(`#${number} ${name}  id=${id || '-'}  ${event.data}`, { event: name, id, stream: number });
  if (name === 'publication') logNotification(number, event.data);
  if (name === 'recovery-failed') {
    lastId = ''; // the missed events are gone: start afresh
    setStatus('recovery failed: the missed events are no longer available; connect again', 'error');
  } else if (name === 'close') {
    let reason = event.data;
    try {
      const data = JSON.parse(event.data);
      reason = `code ${data.code}: ${data.reason}`;
    } catch {
      // show the raw data
    }
    stop();
    setStatus(`the server ended the stream (${reason})`, 'error');
  } else if (name === 'connected') {
    setStatus(`stream ${number} connected`, 'ok');
  }
  updateButtons();
}

// A notification gets a readable line of its own under its publication.
function logNotification(number, data) {
  let text = null;
  try {
    text = RT.notificationText(JSON.parse(data));
  } catch {
    // not JSON: already shown as it came
  }
  if (text) log(`   ${text}`, { event: 'notification', stream: number });
}

// The browser would reconnect with the same (spent) ticket: stop and let the user resume.
function lost(number) {
  stop();
  log(`-- stream ${number}: connection lost`, { event: 'info', stream: number });
  setStatus('connection lost: press resume', 'error');
  updateButtons();
}

function stop() {
  if (source !== null) source.close();
  source = null;
}

RT.setupLogin(() => updateButtons());
RT.setupClearLog();
$('connect-button').addEventListener('click', () => open(''));
$('disconnect-button').addEventListener('click', () => {
  stop();
  log(`-- stream ${stream}: disconnected by the page`, { event: 'info', stream });
  setStatus('disconnected', 'info');
  updateButtons();
});
$('resume-button').addEventListener('click', () => open(lastId));
updateButtons();
