/**
 * Resumable uploads over the WebSocket:
 *
 *     -> file.begin {name, mime, size, sha256?, channel?, upload_id? (to resume)}
 *     <- file.ready {upload_id, offset, chunk_size, window}
 *     -> 0x01 chunks from `offset`, never more than `window` bytes past the last ack
 *     <- file.ack {upload_id, offset} once each chunk is on the server's disk
 *     -> file.end {upload_id}      <- file.done {file_id, name, mime, size, sha256, url}
 *
 * When the connection drops, the client reconnects and sends `file.begin` with the same
 * `upload_id`; the server says what it has and the upload goes on from there. The SHA-256
 * comes from WebCrypto, which has no streaming digest: it reads the whole file once (pass
 * `sha256: false`, or the hex digest you have, for files too large to hold in memory).
 */

import { chunkFrame } from "./binary.js";
import { ConnectionLost, RealtimeError } from "./errors.js";

export interface UploadProgress {
  /** Bytes the server has confirmed (written to its disk). */
  loaded: number;
  total: number;
  /** How many times the upload resumed after a lost connection. */
  resumes: number;
}

export interface UploadOptions {
  name?: string;
  mime?: string;
  /** Publish `{kind: "file", …}` on this channel when done (needs publish permission). */
  channel?: string;
  /** `true` (default): computed with WebCrypto; a hex string: yours; `false`: none. */
  sha256?: boolean | string;
  onProgress?: (progress: UploadProgress) => void;
  /** Resume an upload begun earlier (e.g. by a page that was reloaded). */
  uploadId?: string;
  /** Called with the upload id as soon as the server gave it (keep it to resume later). */
  onUploadId?: (uploadId: string) => void;
}

export interface FileDone {
  type: "file.done";
  file_id: string;
  name: string;
  mime: string;
  size: number;
  sha256: string;
  url: string;
}

/** What an upload needs of the client (RealtimeClient, which imports this module). */
export interface Uploader {
  readonly uploads: Uploads;
  readonly closed: boolean;
  readonly bufferedAmount: number;
  request<T>(frame: Record<string, unknown>, options?: { retry?: boolean; timeoutMs?: number; file?: boolean }): Promise<T>;
  send(payload: Uint8Array): void;
  readonly options: { reconnect: boolean; timeoutMs: number };
}

class UploadState {
  error: RealtimeError | null = null;
  #wake: (() => void) | null = null;
  constructor(readonly uploadId: string, public acked: number) {}

  changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new RealtimeError("timeout", "the server stopped acknowledging chunks", "file")), timeoutMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

/** The uploads running on a client, by upload id. */
export class Uploads {
  readonly states = new Map<string, UploadState>();

  ack(frame: Record<string, unknown>): void {
    const state = this.states.get(String(frame.upload_id));
    if (state && typeof frame.offset === "number" && frame.offset > state.acked) state.acked = frame.offset;
    state?.notify();
  }

  fail(error: RealtimeError): void {
    for (const state of this.states.values()) {
      state.error ??= error;
      state.notify();
    }
  }
}

export async function sha256Hex(data: Blob | Uint8Array): Promise<string> {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function slice(data: Blob | Uint8Array, start: number, end: number): Promise<Uint8Array> {
  return data instanceof Uint8Array ? data.subarray(start, end) : new Uint8Array(await data.slice(start, end).arrayBuffer());
}

export async function upload(client: Uploader, data: Blob | Uint8Array, options: UploadOptions): Promise<FileDone> {
  const size = data instanceof Uint8Array ? data.byteLength : data.size;
  const digest = options.sha256 === false ? undefined : typeof options.sha256 === "string" ? options.sha256 : await sha256Hex(data);
  const blobName = typeof File !== "undefined" && data instanceof File ? data.name : undefined;
  const blobType = !(data instanceof Uint8Array) ? data.type : "";
  const begin: Record<string, unknown> = {
    type: "file.begin",
    name: options.name ?? blobName ?? "file",
    mime: options.mime || blobType || "application/octet-stream",
    size,
  };
  if (digest) begin.sha256 = digest;
  if (options.channel) begin.channel = options.channel;
  if (options.uploadId) begin.upload_id = options.uploadId;
  const progress = { loaded: -1, total: size, resumes: 0 };
  const report = (loaded: number): void => {
    if (loaded <= progress.loaded) return;
    progress.loaded = loaded;
    options.onProgress?.({ ...progress });
  };
  for (;;) {
    try {
      const done = await attempt(client, data, begin, size, report, options);
      if (digest && done.sha256 !== digest) throw new RealtimeError("sha256_mismatch", "the server stored different bytes", "file");
      report(size);
      return done;
    } catch (error) {
      if (!(error instanceof ConnectionLost) || !client.options.reconnect || client.closed) throw error;
      progress.resumes += 1; // the next file.begin waits for the reconnect, then resumes
    }
  }
}

async function attempt(
  client: Uploader,
  data: Blob | Uint8Array,
  begin: Record<string, unknown>,
  size: number,
  report: (loaded: number) => void,
  options: UploadOptions,
): Promise<FileDone> {
  const ready = await client.request<{ upload_id: string; offset: number; chunk_size: number; window: number }>(begin, { file: true });
  if (begin.upload_id !== ready.upload_id) options.onUploadId?.(ready.upload_id);
  begin.upload_id = ready.upload_id; // from now on file.begin resumes this upload
  const state = new UploadState(ready.upload_id, ready.offset);
  client.uploads.states.set(state.uploadId, state);
  try {
    let sent = state.acked;
    while (state.acked < size) {
      report(state.acked);
      if (state.error) throw state.error;
      const length = Math.min(ready.chunk_size, size - sent);
      if (sent < size && (sent === state.acked || sent + length - state.acked <= ready.window)) {
        const chunk = await slice(data, sent, sent + length);
        if (state.error) throw state.error;
        client.send(chunkFrame(state.uploadId, sent, chunk));
        sent += length;
        continue;
      }
      await state.changed(client.options.timeoutMs);
    }
    report(state.acked);
    return await client.request<FileDone>({ type: "file.end", upload_id: state.uploadId }, { file: true });
  } finally {
    client.uploads.states.delete(state.uploadId);
  }
}
