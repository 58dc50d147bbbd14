import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";

import { type UploadProgress, sha256Hex } from "@realtime-server/client";

import { collect, connected, env, unique, until } from "./env.js";

test("an upload reports progress, resumes after a dropped connection and keeps every byte", async () => {
  const name = unique("files");
  const client = await connected();
  const channel = await client.subscribe(name);
  const announced = collect(channel, "publication");
  const bytes = new Uint8Array(randomBytes(1024 * 1024 + 123));
  const progress: UploadProgress[] = [];
  let dropped = false;
  const done = await client.upload(bytes, {
    name: "data.bin",
    mime: "application/octet-stream",
    channel: name,
    onProgress: (p) => {
      progress.push(p);
      if (!dropped && p.loaded > 0 && p.loaded < p.total / 2) {
        dropped = true;
        client.reconnect(); // the connection drops mid-upload
      }
    },
  });
  const digest = createHash("sha256").update(bytes).digest("hex");
  assert.equal(await sha256Hex(bytes), digest, "WebCrypto agrees with node:crypto");
  assert.equal(done.sha256, digest);
  assert.equal(done.size, bytes.length);
  assert.ok(dropped, "the connection was dropped during the upload");
  assert.ok(progress.at(-1)!.resumes >= 1, "the upload resumed");
  assert.equal(progress.at(-1)!.loaded, bytes.length);
  const loaded = progress.map((p) => p.loaded);
  assert.deepEqual(loaded, [...loaded].sort((a, b) => a - b), "progress only grows");
  assert.ok(progress.length > 4, "progress arrived chunk by chunk");

  const response = await fetch(new URL(done.url, env.base), { headers: { Authorization: `Bearer ${env.token}` } });
  assert.equal(response.status, 200);
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
  await until(() => announced.length === 1, "the file publication");
  assert.equal((announced[0]!.data as { kind: string; file_id: string }).file_id, done.file_id);
});

test("an upload error is a typed error", async () => {
  const client = await connected();
  await assert.rejects(client.upload(new Uint8Array(10), { channel: "system:nope" }), { name: "RealtimeError", code: "forbidden" });
  assert.ok(client.connected);
});
