import assert from "node:assert/strict";
import { test } from "node:test";

import { RealtimeClient, RealtimeError, ticketFrom } from "@realtime-server/client";

import { collect, connected, env, unique, until } from "./env.js";

test("connect, subscribe, publish: the round trip", async () => {
  let asked = 0;
  const client = await connected({ token: () => (asked++, env.token) });
  assert.equal(asked, 1);
  assert.equal(client.userId, env.userId);
  const name = unique("round");
  const channel = await client.subscribe(name);
  const publications = collect(channel, "publication");
  const ack = await client.publish(name, { hello: "world" });
  assert.match(ack.cursor ?? "", /^.+:\d+$/);
  await until(() => publications.length === 1, "the publication");
  assert.deepEqual(publications[0]!.data, { hello: "world" });
  assert.equal(publications[0]!.from.user_id, env.userId);
  assert.equal(publications[0]!.cursor, ack.cursor);
  assert.equal(channel.cursor, ack.cursor);
  assert.deepEqual((await client.ping({ n: 1 })).data, { n: 1 });
});

test("an API key authenticates in a header (Node)", async () => {
  const client = await connected({ apiKey: env.apiKey });
  assert.equal(client.userId, env.userId);
});

test("a ticket fetched through a callback (the browser way)", async () => {
  const client = await connected({ ticket: ticketFrom(env.base, () => env.token) });
  assert.equal(client.userId, env.userId);
  assert.ok(client.clientId);
});

test("server errors are typed RealtimeErrors with code, message and ref", async () => {
  const client = await connected();
  const forbidden = await client.publish("system:anything", 1).then(
    () => assert.fail("publishing on system: must be refused"),
    (error: unknown) => error,
  );
  assert.ok(forbidden instanceof RealtimeError);
  assert.equal(forbidden.code, "forbidden");
  assert.equal(typeof forbidden.ref, "number");
  assert.ok(forbidden.message.length > 0);
  await assert.rejects(client.subscribe("public:no spaces!"), { name: "RealtimeError", code: "bad_channel" });
  await assert.rejects(client.presence("user:1"), (error: RealtimeError) => error.code === "forbidden" || error.code === "presence_disabled");
  assert.equal(client.channel("public:no spaces!"), undefined, "a refused subscription is not followed");
  assert.ok(client.connected, "the connection stays open");

  const refused = new RealtimeClient({ url: env.wsUrl, auth: { token: "not-a-token" } });
  await assert.rejects(refused.connect(), (error: RealtimeError) => {
    assert.ok(error instanceof RealtimeError);
    assert.equal(error.status, 401);
    return true;
  });
  assert.ok(refused.closed);
});

test("presence, join and leave", async () => {
  const name = unique("presence");
  const alice = await connected();
  const channel = await alice.subscribe(name);
  const joins = collect(channel, "join");
  const leaves = collect(channel, "leave");
  const bob = await connected({ token: env.bobToken });
  await bob.subscribe(name);
  await until(() => joins.some((j) => j.info.user_id === env.bobId), "bob's join");
  const members = await alice.presence(name);
  assert.deepEqual(new Set(members.map((m) => m.user_id)), new Set([env.userId, env.bobId]));
  assert.ok(members.every((m) => m.transport === "ws"));
  await bob.unsubscribe(name);
  await until(() => leaves.some((l) => l.info.user_id === env.bobId), "bob's leave");
});

test("direct messages arrive on user:<id>", async () => {
  const alice = await connected();
  const inbox = await alice.subscribe(`user:${env.userId}`);
  const received = collect(inbox, "publication");
  const bob = await connected({ token: env.bobToken });
  const ack = await bob.sendText("hello alice", env.userId);
  assert.equal(ack.type, "ack");
  await until(() => received.length > 0, "the direct message");
  assert.deepEqual(received.at(-1)!.data, { kind: "direct", text: "hello alice" });
  assert.equal(received.at(-1)!.from.user_id, env.bobId);
  const echo = await alice.sendText("echo me"); // without `to`: the server's echo is the reply
  assert.equal(echo.type, "message");
  assert.equal(echo.text, "echo me");
  const pushed = alice.next("message", 5000);
  const response = await fetch(`${env.base}/realtime/send`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ client_id: alice.clientId, data: { order: 7 } }),
  });
  assert.ok(response.ok, await response.text());
  assert.deepEqual((await pushed).data, { order: 7 });
});

test("binary messages: published on a channel, and echoed", async () => {
  const name = unique("binary");
  const client = await connected();
  const channel = await client.subscribe(name);
  const received = collect(channel, "binary");
  const bytes = new Uint8Array(4096).map((_, i) => (i * 7) % 256);
  const ack = await client.sendBinary(bytes, { channel: name, mime: "application/x-test", filename: "t.bin" });
  assert.equal(ack.type, "ack");
  await until(() => received.length === 1, "the binary message");
  assert.deepEqual(received[0]!.data, bytes);
  assert.equal(received[0]!.header.mime, "application/x-test");
  assert.equal(received[0]!.header.filename, "t.bin");
  assert.equal(received[0]!.header.size, 4096);
  assert.equal(received[0]!.header.from?.user_id, env.userId);

  const echo = client.next("binary", 5000);
  await client.sendBinary(new Uint8Array([1, 2, 3]));
  assert.deepEqual((await echo).data, new Uint8Array([1, 2, 3]));
  await assert.rejects(client.sendBinary(new Uint8Array(70 * 1024), { channel: name }), { code: "too_large" });
});
