// What the native test peers (datachannel-peer.js, werift-peer.js) share: their command line,
// the JSON lines they print, the offer they post and the byte-exact echo check.
"use strict";

const crypto = require("node:crypto");
const readline = require("node:readline");

const started = Date.now();

/** One JSON object a line on stdout: what happened, and when (ms since start). */
function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, t: Date.now() - started, ...fields })}\n`);
}

function parseArgs(argv, script) {
  const options = {
    url: argv[0],
    bridge: null,
    bind: null,
    burst: 0,
    waitStdin: false,
    closeChannels: false,
    linger: 1000,
  };
  for (let i = 1; i < argv.length; i += 1) {
    if (argv[i] === "--bridge") options.bridge = argv[(i += 1)];
    else if (argv[i] === "--bind") options.bind = argv[(i += 1)];
    else if (argv[i] === "--burst") options.burst = Number(argv[(i += 1)]);
    else if (argv[i] === "--wait-stdin") options.waitStdin = true;
    else if (argv[i] === "--close-channels") options.closeChannels = true;
    else if (argv[i] === "--linger") options.linger = Number(argv[(i += 1)]);
    else throw new Error(`unknown option ${argv[i]}`);
  }
  if (!options.url || !process.env.PEER_TOKEN) {
    throw new Error(`usage: PEER_TOKEN=... node ${script} <base url> [options]`);
  }
  return options;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function postOffer(url, sdp) {
  const response = await fetch(new URL("/realtime/webrtc/offer", url), {
    method: "POST",
    headers: {
      authorization: `Bearer ${process.env.PEER_TOKEN}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ type: "offer", sdp }),
  });
  const body = await response.json();
  if (response.status !== 201) throw new Error(`offer refused: ${JSON.stringify(body)}`);
  return body;
}

/** Send 1000 random bytes through `roundTrip` (sends them, resolves with what comes back)
 * and print whether the echo is byte-exact and binary. */
async function exactEcho(roundTrip) {
  const sent = crypto.randomBytes(1000);
  sent[0] = 0; // a NUL and a high byte first: nothing text-like about it
  sent[1] = 0xff;
  const message = await withTimeout(roundTrip(sent), 10000, "the echo");
  const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message);
  emit("echo", { exact: Buffer.isBuffer(message) && bytes.equals(sent), bytes: bytes.length });
}

async function waitForStdinLine() {
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once("line", resolve));
  lines.close();
}

module.exports = { emit, parseArgs, withTimeout, postOffer, exactEcho, waitForStdinLine };
