// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
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
class UploadState {
    uploadId;
    acked;
    error = null;
    #wake = null;
    constructor(uploadId, acked) {
        this.uploadId = uploadId;
        this.acked = acked;
    }
    changed(timeoutMs) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new RealtimeError("timeout", "the server stopped acknowledging chunks", "file")), timeoutMs);
            this.#wake = () => {
                clearTimeout(timer);
                resolve();
            };
        });
    }
    notify() {
        const wake = this.#wake;
        this.#wake = null;
        wake?.();
    }
}
/** The uploads running on a client, by upload id. */
export class Uploads {
    states = new Map();
    ack(frame) {
        const state = this.states.get(String(frame.upload_id));
        if (state && typeof frame.offset === "number" && frame.offset > state.acked)
            state.acked = frame.offset;
        state?.notify();
    }
    fail(error) {
        for (const state of this.states.values()) {
            state.error ??= error;
            state.notify();
        }
    }
}
export async function sha256Hex(data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
    const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes);
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
async function slice(data, start, end) {
    return data instanceof Uint8Array ? data.subarray(start, end) : new Uint8Array(await data.slice(start, end).arrayBuffer());
}
export async function upload(client, data, options) {
    const size = data instanceof Uint8Array ? data.byteLength : data.size;
    const digest = options.sha256 === false ? undefined : typeof options.sha256 === "string" ? options.sha256 : await sha256Hex(data);
    const blobName = typeof File !== "undefined" && data instanceof File ? data.name : undefined;
    const blobType = !(data instanceof Uint8Array) ? data.type : "";
    const begin = {
        type: "file.begin",
        name: options.name ?? blobName ?? "file",
        mime: options.mime || blobType || "application/octet-stream",
        size,
    };
    if (digest)
        begin.sha256 = digest;
    if (options.channel)
        begin.channel = options.channel;
    if (options.uploadId)
        begin.upload_id = options.uploadId;
    const progress = { loaded: -1, total: size, resumes: 0 };
    const report = (loaded) => {
        if (loaded <= progress.loaded)
            return;
        progress.loaded = loaded;
        options.onProgress?.({ ...progress });
    };
    for (;;) {
        try {
            const done = await attempt(client, data, begin, size, report, options);
            if (digest && done.sha256 !== digest)
                throw new RealtimeError("sha256_mismatch", "the server stored different bytes", "file");
            report(size);
            return done;
        }
        catch (error) {
            if (!(error instanceof ConnectionLost) || !client.options.reconnect || client.closed)
                throw error;
            progress.resumes += 1; // the next file.begin waits for the reconnect, then resumes
        }
    }
}
async function attempt(client, data, begin, size, report, options) {
    const ready = await client.request(begin, { file: true });
    if (begin.upload_id !== ready.upload_id)
        options.onUploadId?.(ready.upload_id);
    begin.upload_id = ready.upload_id; // from now on file.begin resumes this upload
    const state = new UploadState(ready.upload_id, ready.offset);
    client.uploads.states.set(state.uploadId, state);
    try {
        let sent = state.acked;
        while (state.acked < size) {
            report(state.acked);
            if (state.error)
                throw state.error;
            const length = Math.min(ready.chunk_size, size - sent);
            if (sent < size && (sent === state.acked || sent + length - state.acked <= ready.window)) {
                const chunk = await slice(data, sent, sent + length);
                if (state.error)
                    throw state.error;
                client.send(chunkFrame(state.uploadId, sent, chunk));
                sent += length;
                continue;
            }
            await state.changed(client.options.timeoutMs);
        }
        report(state.acked);
        return await client.request({ type: "file.end", upload_id: state.uploadId }, { file: true });
    }
    finally {
        client.uploads.states.delete(state.uploadId);
    }
}
