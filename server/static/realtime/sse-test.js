// /realtime/sse-test on the SDK (/static/sdk/): RealtimeEvents on /realtime/events, a live
// log, disconnect, and resume from a position (Last-Event-ID). `events` is on `window` for
// the console.
import { RealtimeEvents } from '/static/sdk/index.js';
import { $, describe, log, loggedIn, notificationText, setStatus, setupClearLog, setupLogin, ticket } from './ui.js';

let events = null;
let stream = 0; // numbers the streams opened, so the log tells them apart (data-stream)

function updateButtons() {
  $('connect-button').disabled = !loggedIn() || events !== null;
  $('disconnect-button').disabled = events === null;
  $('resume-button').disabled = !loggedIn() || events !== null || !$('resume-from').value.trim();
  $('last-id').textContent = (events && events.lastEventId) || '–';
}

async function open(since) {
  stop();
  const channels = $('channels').value.split(',').map((name) => name.trim()).filter(Boolean);
  const number = ++stream;
  const options = { url: location.origin, channels, auth: { ticket } };
  if (since) options.lastEventId = since;
  let current;
  try {
    current = new RealtimeEvents(options);
  } catch (error) {
    setStatus(describe(error), 'error');
    return;
  }
  events = window.events = current;
  const line = (event, text, attrs = {}) => log(`#${number} ${event}  ${text}`, { event, stream: number, ...attrs });
  log(`-- stream ${number}: ${since ? `resuming since ${since}` : 'connecting'} (${channels.join(', ')})`, { event: 'info', stream: number });

  current.on('connected', (hello) => {
    line('connected', JSON.stringify(hello));
    setStatus(`stream ${number} connected${hello.reconnected ? ' again' : ''}`, 'ok');
  });
  current.on('disconnected', ({ code }) => line('disconnected', `code ${code ?? '–'} (Last-Event-ID ${current.lastEventId ?? '–'})`));
  current.on('message', (message) => line('message', JSON.stringify(message)));
  current.on('error', (error) => line('error', describe(error)));
  current.on('closed', (error) => {
    const code = error.closeCode !== undefined ? error.closeCode : error.status;
    line('closed', `${JSON.stringify({ code: code ?? null, error: error.code })} ${error.message}`);
    if (events === current) {
      events = null;
      $('resume-from').value = current.lastEventId ?? '';
      setStatus(`stream ${number} ended: ${error.message}${code ? ` (code ${code})` : ''}`, 'error');
    }
    updateButtons();
  });
  for (const channel of current.channels.values()) {
    channel.on('publication', (publication) => {
      line('publication', `id=${publication.cursor}  ${JSON.stringify(publication)}`, { id: publication.cursor });
      const text = notificationText(publication);
      if (text) line('notification', text);
      updateButtons();
    });
    channel.on('subscribed', ({ cursor, recovered }) => line('subscribed', `${channel.name} at ${cursor ?? '–'}${recovered ? ', recovered' : ''}`));
    channel.on('recovered', ({ publications }) => line('recovered', `${channel.name}: ${publications} missed publications replayed`));
    channel.on('gap', ({ cursor }) => {
      line('gap', `${channel.name}: what was missed is lost (reload your state); live again from ${cursor}`);
      setStatus(`gap on ${channel.name}: the missed events are no longer available`, 'error');
      updateButtons();
    });
    channel.on('join', ({ info }) => line('join', `${channel.name}: user ${info.user_id} (${info.transport})`));
    channel.on('leave', ({ info }) => line('leave', `${channel.name}: user ${info.user_id} (${info.transport})`));
  }
  updateButtons();
  setStatus('connecting…');
  try {
    await current.start();
  } catch (error) {
    if (events === current) setStatus(`refused: ${describe(error)}`, 'error');
  }
  updateButtons();
}

function stop() {
  if (events === null) return;
  const current = events;
  events = null;
  $('resume-from').value = current.lastEventId ?? '';
  current.close();
}

setupLogin(updateButtons);
setupClearLog();
$('connect-button').addEventListener('click', () => open(''));
$('disconnect-button').addEventListener('click', () => {
  stop();
  log(`-- stream ${stream}: disconnected by the page`, { event: 'info', stream });
  setStatus('disconnected', 'info');
  updateButtons();
});
$('resume-button').addEventListener('click', () => open($('resume-from').value.trim()));
$('resume-from').addEventListener('input', updateButtons);
updateButtons();
