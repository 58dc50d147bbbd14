/** BridgeCursors: the cursor each bridged data channel resumes from (pure logic: the data
 * channel is a stand-in; tests/integration/test_webrtc_resume.py drives the same protocol
 * against the real server, and tests/e2e/test_js_sdk.py the SDK in Chromium). */

import assert from "node:assert/strict";
import { test } from "node:test";

import { BridgeCursors, type BridgeFrame } from "@realtime-server/client";

const name = "public:lobby";

function publication(offset: number, epoch = "e1"): string {
  return JSON.stringify({ type: "publication", channel: name, offset, epoch, cursor: `${epoch}:${offset}`, data: { n: offset } });
}

test("BridgeCursors: a first connection asks where the channel stands, then resumes from the last publication", () => {
  const cursors = new BridgeCursors();
  assert.equal(cursors.protocol(name), "{}");
  const hello = cursors.observe(name, JSON.stringify({ type: "subscribed", channel: name, cursor: "e1:4", recovered: true, replayed: 0 }));
  assert.equal(hello?.type, "subscribed");
  assert.deepEqual(JSON.parse(cursors.protocol(name)), { since: "e1:4" });
  assert.equal(cursors.observe(name, publication(5))?.type, "publication");
  assert.equal(cursors.observe(name, publication(6))?.type, "publication");
  assert.deepEqual(JSON.parse(cursors.protocol(name)), { since: "e1:6" });
  assert.equal(cursors.protocol("public:other"), "{}");
});

test("BridgeCursors: a replay moves the cursor publication by publication, duplicates are dropped", () => {
  const cursors = new BridgeCursors();
  cursors.cursors.set(name, "e1:6");
  // the new connection's answer: 2 publications follow, ending at e1:8
  cursors.observe(name, JSON.stringify({ type: "subscribed", channel: name, cursor: "e1:8", recovered: true, replayed: 2 }));
  assert.equal(cursors.cursors.get(name), "e1:6"); // not yet: the path may drop before they arrive
  assert.equal(cursors.observe(name, publication(7))?.data !== undefined, true);
  assert.equal(cursors.observe(name, publication(7)), null); // the old connection, still draining
  assert.equal(cursors.observe(name, publication(6)), null);
  assert.ok(cursors.observe(name, publication(8)));
  assert.equal(cursors.cursors.get(name), "e1:8");
  // another epoch (the history expired): not a duplicate
  assert.ok(cursors.observe(name, publication(1, "e2")));
  assert.equal(cursors.cursors.get(name), "e2:1");
});

test("BridgeCursors: recovered false and gap move the cursor to where delivery resumes", () => {
  const cursors = new BridgeCursors();
  cursors.cursors.set(name, "old:3");
  cursors.observe(name, JSON.stringify({ type: "subscribed", channel: name, cursor: "e9:40", recovered: false, replayed: 0 }));
  assert.equal(cursors.cursors.get(name), "e9:40");
  cursors.observe(name, JSON.stringify({ type: "gap", channel: name, cursor: "e9:70" }));
  assert.equal(cursors.cursors.get(name), "e9:70");
});

test("BridgeCursors: what is not a JSON object is no frame; errors pass through", () => {
  const cursors = new BridgeCursors();
  for (const data of ["not json", "[1]", "null", "42", new ArrayBuffer(2)]) assert.equal(cursors.observe(name, data), null);
  const error = cursors.observe(name, JSON.stringify({ type: "error", code: "bad_cursor", message: "..." }));
  assert.equal(error?.code, "bad_cursor");
  assert.equal(cursors.cursors.size, 0);
});

test("BridgeCursors.open: the data channel carries the resume protocol and feeds onFrame", () => {
  const cursors = new BridgeCursors();
  cursors.cursors.set(name, "e1:2");
  const created: { label: string; protocol: string | undefined; channel: EventTarget }[] = [];
  const pc = {
    createDataChannel(label: string, init?: RTCDataChannelInit) {
      const channel = new EventTarget();
      created.push({ label, protocol: init?.protocol, channel });
      return channel;
    },
  } as unknown as RTCPeerConnection;
  const frames: BridgeFrame[] = [];
  cursors.open(pc, name, (frame) => frames.push(frame));
  assert.deepEqual(
    created.map(({ label, protocol }) => ({ label, protocol })),
    [{ label: name, protocol: '{"since":"e1:2"}' }],
  );
  const channel = created[0]!.channel;
  channel.dispatchEvent(new MessageEvent("message", { data: publication(2) }));
  channel.dispatchEvent(new MessageEvent("message", { data: publication(3) }));
  assert.deepEqual(frames.map((frame) => frame.offset), [3]);
  assert.equal(cursors.protocol(name), '{"since":"e1:3"}');
});
