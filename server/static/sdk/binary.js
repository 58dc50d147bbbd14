// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/**
 * Binary WebSocket frames (integers big-endian):
 *
 *     0x01 file chunk       upload_id (16 bytes, UUID) | offset (uint64) | bytes
 *     0x02 binary message   header length (uint16) | header (JSON) | bytes
 *
 * A client's header is `{channel?, mime, filename?, id?}`; the server's adds `from`, `size`, `ts`.
 */
import { RealtimeError } from "./errors.js";
export const CHUNK = 0x01;
export const MESSAGE = 0x02;
export const MAX_HEADER = 4096;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
export function encodeMessage(header, data) {
    const head = encoder.encode(JSON.stringify(header));
    if (head.length > MAX_HEADER)
        throw new RealtimeError("too_large", `binary header over ${MAX_HEADER} bytes`, "binary");
    const frame = new Uint8Array(3 + head.length + data.length);
    frame[0] = MESSAGE;
    new DataView(frame.buffer).setUint16(1, head.length);
    frame.set(head, 3);
    frame.set(data, 3 + head.length);
    return frame;
}
/** A 0x02 frame from the server; null for anything else. */
export function decodeMessage(frame) {
    if (frame.length < 3 || frame[0] !== MESSAGE)
        return null;
    const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint16(1);
    if (length > MAX_HEADER || 3 + length > frame.length)
        return null;
    try {
        const header = JSON.parse(decoder.decode(frame.subarray(3, 3 + length)));
        return { header, data: frame.slice(3 + length) };
    }
    catch {
        return null;
    }
}
export function chunkFrame(uploadId, offset, data) {
    const hex = uploadId.replace(/-/g, "");
    if (!/^[0-9a-f]{32}$/i.test(hex))
        throw new RealtimeError("bad_upload_id", `not a UUID: ${uploadId}`, "file");
    const frame = new Uint8Array(25 + data.length);
    frame[0] = CHUNK;
    for (let i = 0; i < 16; i++)
        frame[1 + i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    new DataView(frame.buffer).setBigUint64(17, BigInt(offset));
    frame.set(data, 25);
    return frame;
}
export function base64ToBytes(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++)
        bytes[i] = raw.charCodeAt(i);
    return bytes;
}
