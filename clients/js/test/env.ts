/** What the pytest driver (tests/e2e/test_js_sdk.py) hands the tests: the server's URL,
 * credentials of two users, and a control URL that restarts the server on the same port. */

import assert from "node:assert/strict";
import { after } from "node:test";

import { type Auth, type Channel, type ChannelEvents, RealtimeClient, type SocketOptions } from "@realtime-server/client";

function required(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run these tests through tests/e2e/test_js_sdk.py`);
  return value;
}

export const env = {
  base: required("RT_BASE_URL"),
  wsUrl: required("RT_BASE_URL").replace(/^http/, "ws") + "/realtime/ws",
  token: required("RT_TOKEN"),
  userId: Number(required("RT_USER_ID")),
  apiKey: required("RT_API_KEY"),
  bobToken: required("RT_BOB_TOKEN"),
  bobId: Number(required("RT_BOB_ID")),
  control: required("RT_CONTROL_URL"),
  subscriptionTokenKey: required("RT_SUBSCRIPTION_TOKEN_KEY"),
};

/** A channel name no other test (or earlier run) uses. */
export function unique(prefix: string): string {
  return `public:${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

const clients: { close(): void }[] = [];

export async function connected(auth: Auth = { token: env.token }, options: Partial<SocketOptions> = {}): Promise<RealtimeClient> {
  const client = new RealtimeClient({ url: env.wsUrl, auth, reconnectDelayMs: 100, maxReconnectDelayMs: 1000, timeoutMs: 5000, ...options });
  clients.push(client);
  await client.connect();
  return client;
}

export function closeLater<T extends { close(): void }>(thing: T): T {
  clients.push(thing);
  return thing;
}

/** Collects a channel's events of one kind. */
export function collect<K extends keyof ChannelEvents>(channel: Channel, event: K): ChannelEvents[K][] {
  const seen: ChannelEvents[K][] = [];
  channel.on(event, (value) => seen.push(value));
  return seen;
}

export async function until(probe: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A promise to open later (`gate.open()`), to hold a credential callback. */
export function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

// Every rejection must reach the app through a promise it awaits or an event: none unhandled.
const unhandled: unknown[] = [];
process.on("unhandledRejection", (reason) => unhandled.push(reason));

after(() => {
  for (const client of clients.splice(0)) client.close();
  assert.deepEqual(unhandled, [], "no unhandled rejections");
});
