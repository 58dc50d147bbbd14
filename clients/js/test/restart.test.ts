import assert from "node:assert/strict";
import { test } from "node:test";

import { collect, connected, env, gate, unique, until } from "./env.js";

/** Stops the server process and starts it again on the same port (the pytest driver does it). */
async function restartServer(): Promise<void> {
  const response = await fetch(`${env.control}/restart`, { method: "POST", signal: AbortSignal.timeout(60_000) });
  assert.equal(response.status, 200, await response.text());
}

test("across a server restart: reconnect, resubscribe with the cursor, recover what was missed", async () => {
  const name = unique("restart");
  const held = gate();
  let asked = 0;
  let holding = false;
  // The token callback is asked again before every reconnect: it holds the reconnect until
  // the publications "meanwhile" are made, so the recovery (not live delivery) must bring them.
  const client = await connected({
    token: async () => {
      asked += 1;
      if (holding) await held.wait;
      return env.token;
    },
  });
  const channel = await client.subscribe(name);
  const publications = collect(channel, "publication");
  const recovered = collect(channel, "recovered");
  const gaps = collect(channel, "gap");
  const disconnects: number[] = [];
  client.on("disconnected", ({ code }) => disconnects.push(code));
  await client.publish(name, 1);
  await until(() => publications.length === 1, "the first publication");

  holding = true;
  await restartServer();
  await until(() => disconnects.length > 0, "the disconnect");
  assert.ok(!client.connected);

  const publisher = await connected({ apiKey: env.apiKey });
  for (const n of [2, 3, 4]) await publisher.publish(name, n);
  publisher.close();
  held.open();

  await until(() => recovered.length === 1, "the recovery", 20_000);
  assert.deepEqual(
    publications.map((p) => p.data),
    [1, 2, 3, 4],
  );
  assert.equal(recovered[0]!.publications, 3);
  assert.deepEqual(gaps, []);
  assert.ok(asked >= 2, "the token callback was asked again");
  assert.equal(channel.cursor, publications.at(-1)!.cursor);
  assert.ok(client.reconnects >= 1);

  await client.publish(name, 5); // live again
  await until(() => publications.length === 5, "the live publication");
});
