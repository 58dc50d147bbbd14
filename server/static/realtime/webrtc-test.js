// /realtime/webrtc/test on the SDK (/static/sdk/): signaling over a RealtimeClient, a Room,
// the server peer (camera echo, data channels `echo` and `public:webrtc-lobby`), and calls
// between members; STUN/TURN servers (short-lived TURN credentials) from
// GET /realtime/webrtc/ice-servers. `client` and `room` are on `window` for the console.
import { RealtimeClient, Room, iceServers, requestJson } from '/static/sdk/index.js';
import { $, describe, http, log, loggedIn, setStatus, setupClearLog, setupLogin, ticket, wsUrl } from './ui.js';

const SERVER = 'server';
const CHAT = 'public:webrtc-lobby';

let client = null;
let ice = []; // the last list from the server
let room = null; // the Room joined
let offSignal = null;
let camera = null; // the getUserMedia promise, asked once and shared by every connection
let server = null; // {pc, echo, chat}: the connection to the server peer

const channelOpen = (channel) => channel != null && channel.readyState === 'open';

function updateButtons() {
  $('connect-button').disabled = !loggedIn() || client !== null;
  $('create-room-button').disabled = !loggedIn();
  $('join-button').disabled = !(client && client.connected) || room !== null;
  $('leave-button').disabled = room === null;
  $('camera-button').disabled = room === null || server !== null;
  $('echo-button').disabled = !channelOpen(server && server.echo);
  $('chat-send-button').disabled = !channelOpen(server && server.chat);
  for (const button of document.querySelectorAll('.call-button')) {
    button.disabled = room === null || room.peers.has(button.dataset.peerId);
  }
}

// -- ICE servers and connection settings --------------------------------------------------

async function loadIceServers() {
  ice = await iceServers(http);
  const urls = ice.flatMap((server) => [].concat(server.urls));
  $('ice-servers').textContent = urls.length ? urls.join(', ') : 'none';
  return ice;
}

// Before the offer or answer: the freshest servers, and "relay only" forces TURN
// (iceTransportPolicy "relay"), as behind a strict firewall.
function configure(pc) {
  const policy = $('relay-only').checked ? 'relay' : 'all';
  pc.setConfiguration({ ...pc.getConfiguration(), iceServers: ice, iceTransportPolicy: policy });
}

function getCamera() {
  if (camera === null) {
    camera = navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    camera.then(
      (stream) => { $('local-video').srcObject = stream; },
      () => { camera = null; }, // ask again next time
    );
  }
  return camera;
}

function addCamera(pc, stream) {
  if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
}

// Remote tracks may come in separate streams (aiortc gives each its own): one stream per video.
function showTrack(video, track) {
  if (!video.srcObject) video.srcObject = new MediaStream();
  video.srcObject.addTrack(track);
}

function showState(pc, element) {
  const show = () => {
    element.textContent = pc.connectionState;
    updateButtons();
  };
  pc.addEventListener('connectionstatechange', show);
  show();
}

// -- signaling ----------------------------------------------------------------------------

// An SDP is long: the log shows its size and the types of the candidates it carries.
function summary(frame) {
  return JSON.stringify(frame, (key, value) => {
    if (key !== 'sdp' || typeof value !== 'string') return value;
    const counts = new Map();
    for (const [, type] of value.matchAll(/^a=candidate:.* typ (\w+)/gm)) counts.set(type, (counts.get(type) || 0) + 1);
    const candidates = [...counts].map(([type, count]) => `${count} ${type}`).join(', ') || 'none';
    return `(${value.length} bytes; candidates: ${candidates})`;
  });
}

async function connect() {
  if (client !== null) return;
  const created = new RealtimeClient({ url: wsUrl('/realtime/webrtc/signaling'), auth: { ticket } });
  client = window.client = created;
  created.on('trace', ({ direction, frame }) => log(summary(frame), { dir: direction, type: frame.type, from: frame.from }));
  created.on('connected', (hello) => {
    $('signaling-state').textContent = `connected as user ${hello.user_id}`;
    setStatus('signaling connected', 'ok');
    updateButtons();
  });
  created.on('disconnected', ({ code }) => {
    $('signaling-state').textContent = `reconnecting (closed with ${code})`;
    if (room) leftRoom('signaling dropped: the server took us out of the room');
    updateButtons();
  });
  created.on('closed', (error) => {
    if (client === created) client = null;
    $('signaling-state').textContent = `closed (${describe(error)})`;
    setStatus('signaling closed', 'error');
    updateButtons();
  });
  created.on('error', (error) => setStatus(`error ${describe(error)}`, 'error'));
  updateButtons();
  $('signaling-state').textContent = 'connecting';
  try {
    await loadIceServers();
    await created.connect();
  } catch (error) {
    setStatus(describe(error), 'error');
  }
  updateButtons();
}

// -- rooms --------------------------------------------------------------------------------

async function createRoom() {
  try {
    const body = { name: $('room-name').value.trim(), max_participants: Number($('room-max').value) };
    const created = await requestJson(http, 'POST', '/realtime/webrtc/rooms', body);
    $('room-id').value = created.id;
    setStatus(`room "${created.name}" created: join it`, 'ok');
  } catch (error) {
    setStatus(describe(error), 'error');
  }
}

async function join() {
  const id = $('room-id').value.trim();
  if (!id || room !== null) return;
  $('join-button').disabled = true;
  let stream = null;
  try {
    stream = await getCamera(); // for the calls we answer
  } catch (error) {
    setStatus(`no camera (${error.message}): calls will receive only`, 'error');
  }
  const joining = new Room(client, id, {
    iceServers: ice,
    onOffer: (pc, from) => {
      configure(pc);
      addCamera(pc, stream);
      showCall(from, pc);
    },
    onError: (error) => setStatus(`signal: ${describe(error)}`, 'error'),
  });
  try {
    await joining.join();
  } catch (error) {
    setStatus(`join: ${describe(error)}`, 'error');
    updateButtons();
    return;
  }
  room = window.room = joining;
  // After the Room's own listener: room.participants is up to date when this runs.
  offSignal = client.on('signal', (frame) => {
    if (frame.type === 'peer-left') hideCall(String(frame.peer_id));
    if (frame.type === 'peer-joined' || frame.type === 'peer-left') renderParticipants();
  });
  $('room-state').textContent = `${id} as peer ${room.peerId}`;
  setStatus('joined the room', 'ok');
  renderParticipants();
}

async function leave() {
  if (room === null) return;
  const leaving = room;
  leftRoom('left the room');
  try {
    await leaving.leave();
  } catch (error) {
    setStatus(`leave: ${describe(error)}`, 'error');
  }
}

// Out of the room: every connection of it is closed (the Room closes them on leave()).
function leftRoom(why) {
  if (offSignal) offSignal();
  offSignal = null;
  const leaving = room;
  room = window.room = null;
  if (leaving) for (const pc of leaving.peers.values()) pc.close();
  closeServer();
  $('calls').replaceChildren();
  $('room-state').textContent = 'not in a room';
  renderParticipants();
  setStatus(why, 'ok');
}

function renderParticipants() {
  const members = room ? room.participants : [];
  $('participants').replaceChildren(...members.map(({ peer_id: peerId, user_id: userId }) => {
    const item = document.createElement('li');
    item.dataset.peerId = peerId;
    item.dataset.userId = userId;
    const button = document.createElement('button');
    button.type = 'button';
    button.id = `call-${peerId}`;
    button.className = 'call-button';
    button.dataset.peerId = peerId;
    button.textContent = 'call';
    button.addEventListener('click', () => startCall(peerId));
    const who = document.createElement('span');
    who.textContent = `user ${userId}`;
    const peer = document.createElement('code');
    peer.textContent = `peer ${peerId}`;
    item.append(who, peer, button);
    return item;
  }));
  updateButtons();
}

// -- the server peer ----------------------------------------------------------------------

async function sendCameraToServer() {
  if (server !== null || room === null) return;
  server = { pc: null, echo: null, chat: null };
  updateButtons();
  try {
    const stream = await getCamera();
    await loadIceServers(); // a fresh TURN credential for this connection
    server.pc = await room.call(SERVER, (pc) => {
      configure(pc);
      showState(pc, $('server-state'));
      pc.addEventListener('track', (event) => showTrack($('remote-video'), event.track));
      server.echo = dataChannel(pc, 'echo', $('echo-state'), onEcho);
      server.chat = dataChannel(pc, CHAT, $('chat-state'), onChat);
      addCamera(pc, stream);
    });
  } catch (error) {
    setStatus(`server peer: ${describe(error)}`, 'error');
    closeServer();
  }
}

function closeServer() {
  if (server === null) return;
  if (room) {
    const pc = room.peers.get(SERVER);
    if (pc) pc.close();
    room.peers.delete(SERVER); // a new call makes a new connection
  }
  server = null;
  for (const id of ['server-state', 'echo-state', 'chat-state']) $(id).textContent = 'closed';
  $('remote-video').srcObject = null;
  updateButtons();
}

function dataChannel(pc, label, stateElement, onMessage) {
  const channel = pc.createDataChannel(label);
  const show = () => {
    stateElement.textContent = channel.readyState;
    updateButtons();
  };
  for (const event of ['open', 'closing', 'close']) channel.addEventListener(event, show);
  channel.addEventListener('message', (event) => onMessage(event.data));
  show();
  return channel;
}

// The `echo` channel sends every message back: the message carries its sending time.
function sendEcho() {
  if (channelOpen(server && server.echo)) server.echo.send(JSON.stringify({ sent: performance.now() }));
}

function onEcho(data) {
  const rtt = performance.now() - JSON.parse(data).sent;
  $('echo-rtt').textContent = `${rtt.toFixed(1)} ms`;
  $('echo-rtt').dataset.ms = rtt.toFixed(1);
}

// The bridge publishes what we send (JSON as is, other text as a JSON string) and sends
// down the channel's publications (ours too), who joins and leaves it, and its errors.
function sendChat(event) {
  event.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text || !channelOpen(server && server.chat)) return;
  server.chat.send(JSON.stringify({ text }));
  $('chat-input').value = '';
}

function onChat(data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    frame = { type: 'text', data };
  }
  let text;
  let kind;
  if (frame.type === 'publication') {
    const body = frame.data && typeof frame.data.text === 'string' ? frame.data.text : JSON.stringify(frame.data);
    text = `${frame.from ? `user ${frame.from.user_id}` : 'server'}: ${body}`;
    kind = 'publication';
  } else if (frame.type === 'join' || frame.type === 'leave') {
    text = `user ${frame.info.user_id} ${frame.type === 'join' ? 'joined' : 'left'} (${frame.info.transport})`;
    kind = 'presence';
  } else if (frame.type === 'error') {
    text = `error ${frame.code}: ${frame.message}`;
    kind = 'error';
  } else {
    text = String(data);
    kind = 'other';
  }
  log(text, { kind, type: kind === 'error' ? 'error' : undefined }, $('chat'));
}

// -- peer-to-peer calls -------------------------------------------------------------------

async function startCall(peerId) {
  if (room === null || room.peers.has(peerId)) return;
  try {
    const stream = await getCamera();
    await loadIceServers();
    await room.call(peerId, (pc) => {
      configure(pc);
      addCamera(pc, stream);
      showCall(peerId, pc);
    });
  } catch (error) {
    setStatus(`call: ${describe(error)}`, 'error');
    const pc = room && room.peers.get(peerId);
    if (pc) pc.close();
    hideCall(peerId);
  }
  updateButtons();
}

// A video, its caption and the connection's state for the call with `peerId`.
function showCall(peerId, pc) {
  hideCall(peerId);
  const figure = document.createElement('figure');
  figure.id = `call-box-${peerId}`;
  // Muted at first (two pages on one machine would echo each other): unmute in the controls.
  const video = Object.assign(document.createElement('video'), {
    id: `peer-video-${peerId}`, autoplay: true, playsInline: true, muted: true, controls: true,
  });
  const caption = document.createElement('figcaption');
  const state = document.createElement('span');
  state.id = `peer-state-${peerId}`;
  state.className = 'state';
  const member = room && room.participants.find((p) => p.peer_id === peerId);
  caption.append(`user ${member ? member.user_id : '?'}: `, state);
  figure.append(video, caption);
  $('calls').append(figure);
  showState(pc, state);
  pc.addEventListener('track', (event) => showTrack(video, event.track));
  updateButtons();
}

function hideCall(peerId) {
  const figure = $(`call-box-${peerId}`);
  if (figure) figure.remove();
  if (room && room.peers.get(peerId) && room.peers.get(peerId).connectionState === 'closed') room.peers.delete(peerId);
  updateButtons();
}

// -- wiring -------------------------------------------------------------------------------

setupLogin(updateButtons);
setupClearLog();
$('connect-button').addEventListener('click', connect);
$('create-room-button').addEventListener('click', createRoom);
$('join-button').addEventListener('click', join);
$('leave-button').addEventListener('click', leave);
$('camera-button').addEventListener('click', sendCameraToServer);
$('echo-button').addEventListener('click', sendEcho);
$('chat-form').addEventListener('submit', sendChat);
updateButtons();
