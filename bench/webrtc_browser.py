"""The chromium side of the WebRTC throughput scenario: the echo pump of
bench/webrtc_media.py in JavaScript (BROWSER_SETUP, run in the page), and the CPU of the
browser's processes (children of this process, so not in getrusage until reaped)."""

from __future__ import annotations

import os

from bench import system
from bench.harness import Harness

BROWSER_SETUP = """
async ({token, offerPath, size, high, low, windowBytes, timeoutMs}) => {
  const started = performance.now();
  const pc = new RTCPeerConnection({iceServers: []});
  const channel = pc.createDataChannel("echo");
  channel.binaryType = "arraybuffer";
  const opened = new Promise((resolve) => channel.addEventListener("open", resolve));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  const offered = performance.now();
  const answer = await fetch(offerPath, {
    method: "POST",
    headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    body: JSON.stringify({sdp: pc.localDescription.sdp, type: "offer"}),
  });
  if (answer.status !== 201) throw new Error("offer: HTTP " + answer.status + " " +
                                             await answer.text());
  const reply = await answer.json();
  const answered = performance.now();
  await pc.setRemoteDescription({type: "answer", sdp: reply.sdp});
  await Promise.race([opened, new Promise((_, reject) =>
    setTimeout(() => reject(new Error("data channel not open")), timeoutMs))]);
  const payload = new Uint8Array(size);
  crypto.getRandomValues(payload);  // at most 65,536 bytes at a time
  const state = {sent: 0, echoed: 0, wrong: 0, running: false};
  const pump = () => {
    while (state.running && channel.bufferedAmount <= high &&
           state.sent - state.echoed <= windowBytes - size) {
      channel.send(payload);
      state.sent += size;
    }
  };
  channel.bufferedAmountLowThreshold = low;
  channel.addEventListener("bufferedamountlow", pump);
  channel.addEventListener("message", (event) => {
    const data = event.data;
    if (!(data instanceof ArrayBuffer) || data.byteLength !== size ||
        new Uint8Array(data, 0, 16).some((b, i) => b !== payload[i])) state.wrong += 1;
    state.echoed += typeof data === "string" ? data.length : data.byteLength;
    pump();
  });
  window.bench = {
    pc, channel, state,
    start() { state.running = true; pump(); },
    async mark() {
      const at = performance.now() / 1000, sent = state.sent, echoed = state.echoed;
      let packetsOut = 0, packetsIn = 0;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === "transport") { packetsOut += s.packetsSent; packetsIn += s.packetsReceived; }
      }
      return {at, sent, echoed, packetsOut, packetsIn};
    },
    async stop(waitMs) {
      state.running = false;
      const until = performance.now() + waitMs;
      while (state.echoed < state.sent && performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return {sent: state.sent, echoed: state.echoed, wrong: state.wrong};
    },
  };
  return {peerId: reply.peer_id, offerMs: offered - started, postMs: answered - offered,
          openMs: performance.now() - answered};
}
"""


def descendants(root: int, exclude: set[int]) -> list[int]:
    """Every process below `root` except the subtrees of `exclude` (the server, the worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    stack = [pid for pid in children.get(root, []) if pid not in exclude]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(child for child in children.get(pid, []) if child not in exclude)
    return found


def browser_cpu_seconds(harness: Harness) -> dict[int, float]:
    """pid -> CPU seconds of this process's children other than the server and worker: the
    Playwright driver and chromium's processes."""
    exclude = {child.pid for child in (harness.server, harness.worker) if child is not None}
    seconds: dict[int, float] = {}
    for pid in descendants(os.getpid(), exclude):
        try:
            seconds[pid] = system.process_cpu_seconds(pid)
        except OSError:
            continue
    return seconds


def affinity_of(pids: list[int]) -> set[int]:
    cpus: set[int] = set()
    for pid in pids:
        try:
            cpus |= os.sched_getaffinity(pid)
        except OSError:
            continue
    return cpus
