// /realtime/webrtc/test: signaling on /realtime/webrtc/signaling (signaling/protocol.py):
// rooms and their participants, the server peer (camera echo, data channels `echo` and
// `public:webrtc-lobby`), and peer-to-peer calls between members of the room; STUN/TURN
// servers (short-lived TURN credentials) from /realtime/webrtc/ice-servers.
'use strict';

const { $, log, setStatus } = RT;
const SERVER = 'server';
const CHAT = 'public:webrtc-lobby';
const ICE_REFRESH_MS = 10 * 60 * 1000; // fetch a new TURN credential this long before expiry

let ws = null;
let ice = { iceServers: [], expiresAt: null }; // GET /realtime/webrtc/ice-servers
let room = null; // the room joined, by id
const participants = new Map(); // peer_id -> user_id, everyone in the room but us
let camera = null; // the getUserMedia promise, asked once and shared by every connection
let server = null; // {pc, echo, chat}: the connection to the server peer
const calls = new Map(); // peer_id -> {pc, chain, flush}: peer-to-peer calls

const isOpen = () => ws !== null && ws.readyState === WebSocket.OPEN;
const channelOpen = (channel) => channel != null && channel.readyState === 'open';

function updateButtons() {
  $('connect-button').disabled = !RT.loggedIn() || ws !== null;
  $('create-room-button').disabled = !RT.loggedIn();
  $('join-button').disabled = !isOpen() || room !== null;
  $('leave-button').disabled = room === null;
  $('camera-button').disabled = room === null || server !== null;
  $('echo-button').disabled = !channelOpen(server && server.echo);
  $('chat-send-button').disabled = !channelOpen(server && server.chat);
  for (const button of document.querySelectorAll('.call-button')) {
    button.disabled = room === null || calls.has(button.dataset.peerId);
  }
}

// -- ICE servers --------------------------------------------------------------------------

// STUN/TURN servers from the server, with a TURN credential valid for TURN_TTL seconds
// (none configured: an empty list, fine on one machine or a LAN). The log shows URLs only.
async function loadIceServers() {
  const result = await RT.api('GET', '/realtime/webrtc/ice-servers');
  ice = { iceServers: result.ice_servers, expiresAt: result.expires_at };
  const urls = result.ice_servers.flatMap((server) => [].concat(server.urls));
  $('ice-servers').textContent = urls.length ? urls.join(', ') : 'none';
}

// Fetches a new credential when the one we have is about to expire; true if it did.
async function freshIceServers() {
  if (ice.expiresAt === null || ice.expiresAt * 1000 - Date.now() > ICE_REFRESH_MS) return false;
  await loadIceServers();
  return true;
}

// "relay only" forces TURN (iceTransportPolicy "relay"), as behind a strict firewall.
const rtcConfig = () => ({
  iceServers: ice.iceServers,
  iceTransportPolicy: $('relay-only').checked ? 'relay' : 'all',
});

// -- signaling ----------------------------------------------------------------------------

// SDP is long: the log shows its size only.
const summary = (frame) => JSON.stringify(frame, (key, value) => (key === 'sdp' ? `(${value.length} bytes)` : value));

function send(frame) {
  if (!isOpen()) {
    setStatus('signaling is not connected', 'error');
    return false;
  }
  ws.send(JSON.stringify(frame));
  log(`→ ${summary(frame)}`, { dir: 'out', type: frame.type });
  return true;
}

async function connect() {
  if (ws !== null) return;
  $('connect-button').disabled = true;
  try {
    await loadIceServers();
    const ticket = encodeURIComponent(await RT.ticket());
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/realtime/webrtc/signaling?ticket=${ticket}`);
    ws = socket;
    $('signaling-state').textContent = 'connecting';
    socket.addEventListener('message', (event) => {
      if (ws === socket) onFrame(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (ws !== socket) return;
      ws = null;
      $('signaling-state').textContent = `closed (code ${event.code})`;
      leftRoom();
      setStatus('signaling closed', 'error');
    });
  } catch (error) {
    setStatus(error.message, 'error');
  }
  updateButtons();
}

function onFrame(data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    log(`← (not JSON) ${data}`, { dir: 'in', type: 'unparsable' });
    return;
  }
  log(`← ${summary(frame)}`, { dir: 'in', type: frame.type, from: frame.from });
  switch (frame.type) {
    case 'connected':
      $('signaling-state').textContent = `connected as user ${frame.user_id}`;
      setStatus('signaling connected', 'ok');
      break;
    case 'joined':
      room = frame.room;
      $('room-state').textContent = `${frame.room} as peer ${frame.peer_id}`;
      participants.clear();
      for (const other of frame.participants) participants.set(other.peer_id, other.user_id);
      renderParticipants();
      setStatus('joined the room', 'ok');
      break;
    case 'left':
      leftRoom();
      setStatus('left the room', 'ok');
      break;
    case 'peer-joined':
      participants.set(frame.peer_id, frame.user_id);
      renderParticipants();
      break;
    case 'peer-left':
      participants.delete(frame.peer_id);
      hangUp(frame.peer_id);
      renderParticipants();
      break;
    case 'offer':
      answerCall(frame);
      break;
    case 'answer':
      if (frame.from === SERVER) onServerAnswer(frame.sdp);
      else onCallSignal(frame.from, (pc) => pc.setRemoteDescription({ type: 'answer', sdp: frame.sdp }));
      break;
    case 'candidate':
      // null ends the candidates: nothing to do, the browser copes without it
      if (frame.candidate) onCallSignal(frame.from, (pc) => pc.addIceCandidate(frame.candidate));
      break;
    case 'error':
      setStatus(`error ${frame.code}: ${frame.message}`, 'error');
      // a refused offer or answer ends what it was for (the ids are ours, see below)
      if (frame.ref === 'server-offer') closeServer();
      else if (typeof frame.ref === 'string' && frame.ref.startsWith('call-')) hangUp(frame.ref.slice(5));
      break;
    default:
      break;
  }
  updateButtons();
}

// Trickle ICE: candidates wait until the offer or answer has gone, then follow it; null
// says there are no more. Returns the function that lets them go.
function trickle(pc, to) {
  const waiting = [];
  let flowing = false;
  pc.addEventListener('icecandidate', (event) => {
    const candidate = event.candidate && event.candidate.candidate ? event.candidate.toJSON() : null;
    const frame = { type: 'candidate', to, candidate };
    if (flowing) send(frame);
    else waiting.push(frame);
  });
  return () => {
    flowing = true;
    for (const frame of waiting.splice(0)) send(frame);
  };
}

function showState(pc, element) {
  const show = () => {
    element.textContent = pc.connectionState;
  };
  pc.addEventListener('connectionstatechange', show);
  show();
}

// Remote tracks may come in separate streams (aiortc gives each its own): one stream per video.
function showTrack(video, track) {
  if (!video.srcObject) video.srcObject = new MediaStream();
  video.srcObject.addTrack(track);
}

function getCamera() {
  if (camera === null) {
    camera = navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    camera.then(
      (stream) => {
        $('local-video').srcObject = stream;
      },
      () => {
        camera = null; // ask again next time
      },
    );
  }
  return camera;
}

// -- rooms --------------------------------------------------------------------------------

async function createRoom() {
  try {
    const body = { name: $('room-name').value.trim(), max_participants: Number($('room-max').value) };
    const created = await RT.api('POST', '/realtime/webrtc/rooms', body);
    $('room-id').value = created.id;
    setStatus(`room "${created.name}" created: join it`, 'ok');
  } catch (error) {
    setStatus(error.message, 'error');
  }
}

function join() {
  const id = $('room-id').value.trim();
  if (id) send({ type: 'join', room: id });
}

function leave() {
  send({ type: 'leave' });
}

// Out of the room (left, or signaling closed): the server closes our server peer too.
function leftRoom() {
  room = null;
  $('room-state').textContent = 'not in a room';
  participants.clear();
  for (const peerId of [...calls.keys()]) hangUp(peerId);
  closeServer();
  renderParticipants();
  updateButtons();
}

function renderParticipants() {
  $('participants').replaceChildren(
    ...[...participants].map(([peerId, userId]) => {
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
      item.append(`user ${userId} (peer ${peerId}) `, button);
      return item;
    }),
  );
  updateButtons();
}

// -- the server peer ----------------------------------------------------------------------

async function sendCameraToServer() {
  if (server !== null) return;
  const pc = new RTCPeerConnection(rtcConfig());
  server = { pc, echo: null, chat: null };
  updateButtons();
  showState(pc, $('server-state'));
  pc.addEventListener('track', (event) => showTrack($('remote-video'), event.track));
  server.echo = dataChannel(pc, 'echo', $('echo-state'), onEcho);
  server.chat = dataChannel(pc, CHAT, $('chat-state'), onChat);
  const flush = trickle(pc, SERVER);
  try {
    if (await freshIceServers()) pc.setConfiguration(rtcConfig());
    const stream = await getCamera();
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    await pc.setLocalDescription(await pc.createOffer());
    if (send({ type: 'offer', to: SERVER, sdp: pc.localDescription.sdp, id: 'server-offer' })) flush();
  } catch (error) {
    setStatus(`camera: ${error.message}`, 'error');
    closeServer();
  }
}

async function onServerAnswer(sdp) {
  if (server === null) return;
  try {
    await server.pc.setRemoteDescription({ type: 'answer', sdp });
  } catch (error) {
    setStatus(`server answer: ${error.message}`, 'error');
  }
}

function closeServer() {
  if (server === null) return;
  server.pc.close();
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
  const item = document.createElement('li');
  if (frame.type === 'publication') {
    const text = frame.data && typeof frame.data.text === 'string' ? frame.data.text : JSON.stringify(frame.data);
    const who = frame.from ? `user ${frame.from.user_id}` : 'server';
    item.textContent = `${who}: ${text}`;
    item.dataset.kind = 'publication';
    if (frame.from) item.dataset.userId = frame.from.user_id;
  } else if (frame.type === 'join' || frame.type === 'leave') {
    item.textContent = `user ${frame.info.user_id} ${frame.type === 'join' ? 'joined' : 'left'} (${frame.info.transport})`;
    item.dataset.kind = 'presence';
  } else if (frame.type === 'error') {
    item.textContent = `error ${frame.code}: ${frame.message}`;
    item.dataset.kind = 'error';
  } else {
    item.textContent = String(data);
    item.dataset.kind = 'other';
  }
  $('chat').append(item);
  item.scrollIntoView({ block: 'nearest' });
}

// -- peer-to-peer calls -------------------------------------------------------------------

function newCall(peerId) {
  hangUp(peerId); // an offer for a call we have replaces it
  const pc = new RTCPeerConnection(rtcConfig());
  const call = { pc, chain: Promise.resolve(), flush: trickle(pc, peerId) };
  calls.set(peerId, call);

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
  caption.append(`user ${participants.get(peerId) ?? '?'}: `, state);
  figure.append(video, caption);
  $('calls').append(figure);

  showState(pc, state);
  pc.addEventListener('track', (event) => showTrack(video, event.track));
  updateButtons();
  return call;
}

// One call's steps run one after another: a candidate waits for the offer it belongs to.
function inCall(call, step) {
  call.chain = call.chain.then(step).catch((error) => setStatus(`call: ${error.message}`, 'error'));
}

function startCall(peerId) {
  const call = newCall(peerId);
  inCall(call, async () => {
    if (await freshIceServers()) call.pc.setConfiguration(rtcConfig());
    const stream = await getCamera();
    for (const track of stream.getTracks()) call.pc.addTrack(track, stream);
    await call.pc.setLocalDescription(await call.pc.createOffer());
    const offer = { type: 'offer', to: peerId, sdp: call.pc.localDescription.sdp, id: `call-${peerId}` };
    if (send(offer)) call.flush();
  });
}

// The callee answers by itself, with its camera.
function answerCall(frame) {
  const call = newCall(frame.from);
  inCall(call, async () => {
    if (await freshIceServers()) call.pc.setConfiguration(rtcConfig());
    await call.pc.setRemoteDescription({ type: 'offer', sdp: frame.sdp });
    const stream = await getCamera();
    for (const track of stream.getTracks()) call.pc.addTrack(track, stream);
    await call.pc.setLocalDescription(await call.pc.createAnswer());
    const answer = { type: 'answer', to: frame.from, sdp: call.pc.localDescription.sdp, id: `call-${frame.from}` };
    if (send(answer)) call.flush();
  });
}

function onCallSignal(peerId, step) {
  const call = calls.get(peerId);
  if (call) inCall(call, () => step(call.pc));
}

function hangUp(peerId) {
  const call = calls.get(peerId);
  if (!call) return;
  calls.delete(peerId);
  call.pc.close();
  const figure = $(`call-box-${peerId}`);
  if (figure) figure.remove();
  updateButtons();
}

// -- wiring -------------------------------------------------------------------------------

RT.setupLogin(() => updateButtons());
RT.setupClearLog();
$('connect-button').addEventListener('click', connect);
$('create-room-button').addEventListener('click', createRoom);
$('join-button').addEventListener('click', join);
$('leave-button').addEventListener('click', leave);
$('camera-button').addEventListener('click', sendCameraToServer);
$('echo-button').addEventListener('click', sendEcho);
$('chat-form').addEventListener('submit', sendChat);
updateButtons();
