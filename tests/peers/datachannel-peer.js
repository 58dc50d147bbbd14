// A native WebRTC peer that is not aiortc (libdatachannel, through node-datachannel) for the
// integration tests. It posts its offer to POST /realtime/webrtc/offer, echoes bytes on the
// `echo` data channel, optionally opens a bridged data channel, then closes its peer
// connection. It prints one JSON object a line for everything that happens.
//
//   PEER_TOKEN=<bearer token> node datachannel-peer.js <base url> [options]
//     --bridge <label>   also open a data channel bridged to this hub channel
//     --bind <address>   gather candidates on this address only (127.0.0.1: loopback)
//     --burst <n>        first send n messages of 1000 bytes on `echo`, then open the bridged
//                        channel (the echoes keep the server's SCTP congestion window full)
//     --wait-stdin       wait for a line on stdin before closing the peer connection
//     --close-channels   close the `echo` channel (and wait until it is closed) first
//     --linger <ms>      stay alive this long after closing (default 1000)
//   PEER_LOG=Debug also prints libdatachannel's log.
"use strict";

const nodeDataChannel = require("node-datachannel");
const common = require("./common");

const { emit, parseArgs, withTimeout, postOffer, exactEcho, waitForStdinLine } = common;

function opened(channel) {
  return new Promise((resolve) => {
    if (channel.isOpen()) resolve();
    else channel.onOpen(resolve);
  });
}

async function echo(channel, burst, afterBurst) {
  await opened(channel);
  if (burst > 0) {
    let echoed = 0;
    const all = new Promise((resolve) => {
      channel.onMessage(() => (echoed += 1) === burst && resolve());
    });
    const filler = Buffer.alloc(1000, 0x61);
    for (let i = 0; i < burst; i += 1) channel.sendMessageBinary(filler);
    afterBurst();
    await withTimeout(all, 20000, "the burst's echoes");
    emit("burst", { echoed });
  }
  await exactEcho((sent) => {
    const received = new Promise((resolve) => channel.onMessage(resolve));
    channel.sendMessageBinary(sent);
    return received;
  });
}

function watchBridge(channel) {
  const label = channel.getLabel();
  channel.onOpen(() => emit("channel_open", { label }));
  channel.onMessage((message) => emit("message", { label, data: String(message) }));
  channel.onError((error) => emit("channel_error", { label, error: String(error) }));
  return new Promise((resolve) => {
    channel.onClosed(() => {
      emit("channel_closed", { label });
      resolve();
    });
  });
}

// One attempt: the offer (with every candidate), the answer, the connection. A DTLS handshake
// that fails before the connection is retried (libdatachannel checks the server's certificate
// against a fingerprint it may not have stored yet when the server's DTLS hello comes in
// while it is still applying the answer; the server starts ICE and DTLS as soon as it answers).
async function connect(options) {
  const config = { iceServers: [] };
  if (options.bind) config.bindAddress = options.bind;
  const pc = new nodeDataChannel.PeerConnection("test-peer", config);
  const connected = new Promise((resolve, reject) => {
    pc.onStateChange((state) => {
      emit("state", { state });
      if (state === "connected") resolve();
      if (state === "failed") reject(new Error("the connection failed"));
    });
  });
  connected.catch(() => {}); // handled below
  // (the gathering state callback does not always fire: poll it)
  const gathered = new Promise((resolve) => {
    const poll = setInterval(() => {
      if (pc.gatheringState() === "complete") resolve(clearInterval(poll));
    }, 10);
  });
  const echoChannel = pc.createDataChannel("echo");
  // the bridged channel opens with the echo channel, or while the burst is being echoed
  let bridgeClosed = null;
  const openBridge = () => {
    if (options.bridge) bridgeClosed = watchBridge(pc.createDataChannel(options.bridge));
  };
  if (!options.burst) openBridge();
  await withTimeout(gathered, 10000, "ICE gathering");
  const answer = await postOffer(options.url, pc.localDescription().sdp);
  emit("answered", { peer_id: answer.peer_id });
  pc.setRemoteDescription(answer.sdp, "answer");
  try {
    await withTimeout(connected, 10000, "the connection");
  } catch (error) {
    emit("retry", { reason: String(error.message) });
    pc.close();
    return null;
  }
  return { pc, answer, echoChannel, openBridge, bridgeClosed: () => bridgeClosed };
}

async function main() {
  const options = parseArgs(process.argv.slice(2), "datachannel-peer.js");
  if (process.env.PEER_LOG) {
    // libdatachannel's own log (Verbose, Debug, Info, Warning, Error), as JSON lines too
    nodeDataChannel.initLogger(process.env.PEER_LOG, (level, message) => {
      emit("log", { level, message });
    });
  }
  let attempt = null;
  for (let tries = 1; attempt === null; tries += 1) {
    attempt = await connect(options);
    if (attempt === null && tries === 3) throw new Error("three connections failed");
  }
  const { pc, answer, echoChannel } = attempt;
  await echo(echoChannel, options.burst, attempt.openBridge);
  const bridgeClosed = attempt.bridgeClosed();
  if (bridgeClosed) await withTimeout(bridgeClosed, 10000, "the bridged channel to close");
  if (options.waitStdin) await waitForStdinLine();
  if (options.closeChannels) {
    const closed = new Promise((resolve) => echoChannel.onClosed(resolve));
    echoChannel.close();
    await withTimeout(closed, 10000, "the echo channel to close");
    emit("channel_closed", { label: "echo" });
  }
  emit("closing", { peer_id: answer.peer_id });
  pc.close();
  emit("closed");
  await new Promise((resolve) => setTimeout(resolve, options.linger));
  nodeDataChannel.cleanup();
}

main().then(
  () => process.exit(0),
  (error) => {
    emit("error", { error: String(error && error.message ? error.message : error) });
    process.exit(1);
  },
);
