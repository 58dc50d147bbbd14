import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { PrivateChannels, RealtimeEvents, type RealtimeError } from "@realtime-server/client";

import { closeLater, collect, connected, env, until } from "./env.js";

function privateName(): string {
  return `js-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A subscription token as an application signs it (HS256 with SUBSCRIPTION_TOKEN_KEY). */
function subscriptionToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  const signature = createHmac("sha256", env.subscriptionTokenKey).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

test("private channels: members managed over REST, a removal ends the live subscription", async () => {
  const owner = new PrivateChannels({ baseUrl: env.base, auth: { token: env.token } });
  const name = privateName();
  const created = await owner.create(name);
  assert.equal(created.channel, `private:${name}`);
  assert.equal(created.role, "owner");
  await assert.rejects(owner.create(name), { name: "RealtimeError", code: "channel_exists" });

  const bob = await connected({ token: env.bobToken });
  await assert.rejects(bob.subscribe(created.channel), { code: "forbidden" }); // not a member yet
  await owner.add(name, env.bobId);
  assert.deepEqual(
    (await owner.members(name)).members.map((m) => [m.user_id, m.role]),
    [
      [env.userId, "owner"],
      [env.bobId, "member"],
    ],
  );
  const asBob = new PrivateChannels({ baseUrl: env.base, auth: { token: env.bobToken } });
  await assert.rejects(asBob.add(name, env.bobId), (error: RealtimeError) => error.status === 403 || error.status === 404);
  assert.ok((await asBob.list()).some((c) => c.channel === created.channel && c.role === "member"));

  const channel = await bob.subscribe(created.channel);
  const publications = collect(channel, "publication");
  const ended = collect(channel, "unsubscribed");
  const alice = await connected({ token: env.token });
  await alice.subscribe(created.channel);
  await alice.publish(created.channel, { n: 1 });
  await until(() => publications.length === 1, "bob's publication");

  await owner.remove(name, env.bobId);
  await until(() => ended.length === 1, "bob's unsubscribed event");
  assert.equal(ended[0]!.code, "removed");
  assert.equal(bob.channel(created.channel), undefined, "no longer followed (not resubscribed after a reconnect)");
  await alice.publish(created.channel, { n: 2 });
  await assert.rejects(bob.subscribe(created.channel), { code: "forbidden" });
  assert.equal(publications.length, 1);
  await owner.delete(name);
});

test("private channels over SSE: a removal ends the stream, which does not come back", async () => {
  const owner = new PrivateChannels({ baseUrl: env.base, auth: { token: env.token } });
  const name = privateName();
  const { channel: channelName } = await owner.create(name);
  await owner.add(name, env.bobId);
  const events = closeLater(new RealtimeEvents({ url: env.base, channels: [channelName], auth: { token: env.bobToken }, reconnectDelayMs: 100 }));
  const channel = events.channel(channelName);
  const ended = collect(channel, "unsubscribed");
  const subscribed = channel.next("subscribed", 5000);
  const closed = events.next("closed", 10_000);
  await events.start();
  await subscribed;
  await owner.remove(name, env.bobId);
  await until(() => ended.length === 1, "the unsubscribed event");
  await closed; // no channel left: the stream ended and is not reopened
  assert.equal(events.channels.size, 0);
  assert.equal(events.reconnects, 0);
  await owner.delete(name);
});

test("subscription tokens: the application's grant, fresh for every (re)subscription", async () => {
  const name = `docs:${privateName()}`;
  const bob = await connected({ token: env.bobToken });
  await assert.rejects(bob.subscribe(name), { code: "forbidden" }); // `docs:` opens to tokens only
  const exp = () => Math.floor(Date.now() / 1000) + 60;
  await assert.rejects(bob.subscribe(name, { token: subscriptionToken({ sub: String(env.userId), channel: name, exp: exp() }) }), { code: "token_wrong_user" });
  await assert.rejects(bob.subscribe(name, { token: subscriptionToken({ sub: String(env.bobId), channel: `${name}-other`, exp: exp() }) }), { code: "token_wrong_channel" });
  await assert.rejects(bob.subscribe(name, { token: "not.a.jwt" }), { code: "token_invalid" });

  let asked = 0;
  const channel = await bob.subscribe(name, {
    token: () => {
      asked += 1;
      return subscriptionToken({ sub: String(env.bobId), channel: name, exp: exp(), publish: true });
    },
  });
  const publications = collect(channel, "publication");
  await bob.publish(name, { hello: "docs" }); // `publish: true` in the token
  await until(() => publications.length === 1, "the publication");
  bob.reconnect();
  await channel.next("subscribed", 10_000);
  assert.equal(asked, 2, "the callback is asked again for the resubscription");

  // SSE: the token in the X-Subscription-Token header, never in the URL
  const events = closeLater(
    new RealtimeEvents({
      url: env.base,
      channels: [name],
      auth: { token: env.bobToken },
      subscriptionTokens: () => [subscriptionToken({ sub: String(env.bobId), channel: name, exp: exp() })],
    }),
  );
  const streamed = events.channel(name);
  const seen = collect(streamed, "publication");
  const ready = streamed.next("subscribed", 5000);
  await events.start();
  await ready;
  await bob.publish(name, { over: "sse" });
  await until(() => seen.length === 1, "the SSE publication");
  assert.deepEqual(seen[0]!.data, { over: "sse" });
});
