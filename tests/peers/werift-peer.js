// A native WebRTC peer that is not aiortc: werift, the pure TypeScript stack, for the
// integration tests. Same command line and the same JSON lines as datachannel-peer.js: it
// posts its offer to POST /realtime/webrtc/offer, echoes bytes on the `echo` data channel,
// optionally opens a bridged data channel, then closes its peer connection.
//
//   PEER_TOKEN=<bearer token> node werift-peer.js <base url> [options]
//     --bridge <label>   also open a data channel bridged to this hub channel
//     --bind <address>   also gather a host candidate on this address (127.0.0.1: loopback)
//     --burst <n>        first send n messages of 1000 bytes on `echo`, then open the bridged
//                        channel (the echoes keep the server's SCTP congestion window full)
//     --wait-stdin       wait for a line on stdin before closing the peer connection
//     --close-channels   close the `echo` channel (and wait until it is closed) first
//     --linger <ms>      stay alive this long after closing (default 1000)
//   PEER_LOG=1 also prints werift's own log (the `debug` package, to stderr).
//
// werift 0.25 is the first release whose close sends an SCTP ABORT (earlier ones closed ICE
// first and sent nothing: werift-webrtc issue 681). It declares Node 22 and runs on Node 20.
"use strict";

if (process.env.PEER_LOG) process.env.DEBUG = "werift*";

const { RTCPeerConnection } = require("werift");
const common = require("./common");

const { emit, parseArgs, withTimeout, postOffer, exactEcho, waitForStdinLine } = common;

function opened(channel) {
  return new Promise((resolve) => {
    if (channel.readyState === "open") resolve();
    else channel.stateChanged.subscribe((state) => state === "open" && resolve());
  });
}

async function echo(channel, burst, afterBurst) {
  await opened(channel);
  if (burst > 0) {
    let echoed = 0;
    const all = new Promise((resolve) => {
      const { unSubscribe } = channel.onMessage.subscribe(() => {
        echoed += 1;
        if (echoed === burst) resolve(unSubscribe());
      });
    });
    const filler = Buffer.alloc(1000, 0x61);
    for (let i = 0; i < burst; i += 1) channel.send(filler);
    afterBurst();
    await withTimeout(all, 20000, "the burst's echoes");
    emit("burst", { echoed });
  }
  await exactEcho((sent) => {
    const received = new Promise((resolve) => {
      const { unSubscribe } = channel.onMessage.subscribe((message) => {
        unSubscribe();
        resolve(message);
      });
    });
    channel.send(sent);
    return received;
  });
}

// A werift bug (0.25.2, dtls/src/flight/*/flight{5,6}: sendFinished): its DTLS Finished takes
// epoch 1 and the sequence number after its handshake records (8 here), then its application
// data starts again at epoch 1 sequence 1. The record that gets the Finished's number is a
// replay to the server's OpenSSL, which drops it. A lost data chunk is sent again, a lost
// SCTP ABORT is not: a close whose ABORT is that record goes unseen until ICE consent expires
// (the server cannot tell it from a lost datagram). So the peer sends this many echoes, one
// record each, before it closes: its ABORT comes well after that number.
const PAST_FINISHED_RECORD = 12;

async function echoPastFinishedRecord(channel) {
  for (let i = 0; i < PAST_FINISHED_RECORD; i += 1) {
    // one at a time: each its own DTLS record (SCTP would bundle a burst)
    const echoed = new Promise((resolve) => {
      const { unSubscribe } = channel.onMessage.subscribe(() => resolve(unSubscribe()));
    });
    channel.send(Buffer.from([i]));
    await withTimeout(echoed, 10000, "the echoes before closing");
  }
}

function watchBridge(channel) {
  const { label } = channel;
  channel.onMessage.subscribe((message) => emit("message", { label, data: String(message) }));
  channel.error.subscribe((error) => emit("channel_error", { label, error: String(error) }));
  return new Promise((resolve) => {
    channel.stateChanged.subscribe((state) => {
      if (state === "open") emit("channel_open", { label });
      if (state === "closed") {
        emit("channel_closed", { label });
        resolve();
      }
    });
  });
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    else pc.iceGatheringStateChange.subscribe((state) => state === "complete" && resolve());
  });
}

async function connect(options) {
  const config = { iceServers: [], iceUseIpv6: false };
  if (options.bind) config.iceAdditionalHostAddresses = [options.bind];
  const pc = new RTCPeerConnection(config);
  const connected = new Promise((resolve, reject) => {
    pc.connectionStateChange.subscribe((state) => {
      emit("state", { state });
      if (state === "connected") resolve();
      if (state === "failed") reject(new Error("the connection failed"));
    });
  });
  connected.catch(() => {}); // handled below
  const echoChannel = pc.createDataChannel("echo");
  let bridgeClosed = null;
  const openBridge = () => {
    if (options.bridge) bridgeClosed = watchBridge(pc.createDataChannel(options.bridge));
  };
  if (!options.burst) openBridge();
  await pc.setLocalDescription(await pc.createOffer());
  await withTimeout(gathered(pc), 10000, "ICE gathering");
  const answer = await postOffer(options.url, pc.localDescription.sdp);
  emit("answered", { peer_id: answer.peer_id });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  await withTimeout(connected, 10000, "the connection");
  return { pc, answer, echoChannel, openBridge, bridgeClosed: () => bridgeClosed };
}

async function main() {
  const options = parseArgs(process.argv.slice(2), "werift-peer.js");
  const attempt = await connect(options);
  const { pc, answer, echoChannel } = attempt;
  await echo(echoChannel, options.burst, attempt.openBridge);
  const bridgeClosed = attempt.bridgeClosed();
  if (bridgeClosed) await withTimeout(bridgeClosed, 10000, "the bridged channel to close");
  if (options.waitStdin) await waitForStdinLine();
  await echoPastFinishedRecord(echoChannel);
  if (options.closeChannels) {
    const closed = new Promise((resolve) => {
      echoChannel.stateChanged.subscribe((state) => state === "closed" && resolve());
    });
    echoChannel.close();
    await withTimeout(closed, 10000, "the echo channel to close");
    emit("channel_closed", { label: "echo" });
  }
  emit("closing", { peer_id: answer.peer_id });
  await pc.close();
  emit("closed");
  await new Promise((resolve) => setTimeout(resolve, options.linger));
}

main().then(
  () => process.exit(0),
  (error) => {
    emit("error", { error: String(error && error.message ? error.message : error) });
    process.exit(1);
  },
);
