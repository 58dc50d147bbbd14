import assert from "node:assert/strict";
import { test } from "node:test";

import { RealtimeEvents } from "@realtime-server/client";

import { closeLater, collect, connected, env, gate, unique, until } from "./env.js";

test("SSE: the same channel API, resumed with Last-Event-ID after a drop", async () => {
  const name = unique("sse");
  const publisher = await connected({ apiKey: env.apiKey });
  const held = gate();
  let holding = false;
  const events = closeLater(
    new RealtimeEvents({
      url: env.base,
      channels: [name],
      auth: {
        token: async () => {
          if (holding) await held.wait;
          return env.token;
        },
      },
      reconnectDelayMs: 100,
    }),
  );
  const channel = events.channel(name);
  const publications = collect(channel, "publication");
  const recovered = collect(channel, "recovered");
  const subscribed = events.channel(name).next("subscribed", 5000);
  await events.start();
  await subscribed;
  await publisher.publish(name, "a");
  await until(() => publications.length === 1, "the first event");

  holding = true;
  events.reconnect(); // the stream drops; its reconnect waits for the token
  for (const data of ["b", "c"]) await publisher.publish(name, data);
  holding = false;
  held.open();
  await until(() => recovered.length === 1, "the recovery");
  assert.deepEqual(
    publications.map((p) => p.data),
    ["a", "b", "c"],
  );
  assert.equal(recovered[0]!.publications, 2);
  assert.equal(events.lastEventId, publications.at(-1)!.cursor);
  assert.ok(events.reconnects >= 1);
});

test("SSE: a new stream resumes from a cursor it is given (lastEventId)", async () => {
  const name = unique("sse-resume");
  const publisher = await connected();
  const first = await publisher.publish(name, 1);
  await publisher.publish(name, 2);
  await publisher.publish(name, 3);
  const events = closeLater(new RealtimeEvents({ url: env.base, channels: [name, unique("other")], auth: { apiKey: env.apiKey }, lastEventId: `${name}=${first.cursor}` }));
  const publications = collect(events.channel(name), "publication");
  const recovered = collect(events.channel(name), "recovered");
  await events.start();
  await until(() => recovered.length === 1, "the recovery");
  assert.deepEqual(
    publications.map((p) => p.data),
    [2, 3],
  );
});

test("SSE: a refused stream rejects start() with the HTTP error", async () => {
  const events = new RealtimeEvents({ url: env.base, channels: ["system:x"], auth: { token: env.token } });
  await assert.rejects(events.start(), { name: "RealtimeError", code: "forbidden", status: 403 });
  assert.ok(events.listenerCount("connected") === 0);
});
