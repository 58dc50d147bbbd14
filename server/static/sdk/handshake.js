// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/** Opening one WebSocket connection: credentials (asked again for every attempt), the
 * upgrade, and the server's `connected` frame. A refused upgrade says nothing to a WebSocket
 * API, so for header credentials the same URL is asked over HTTP to learn the server's
 * error envelope (401 `unauthorized`, 403 `forbidden`, …). */
import { resolveAuth, withQuery } from "./auth.js";
import { ConnectionLost, RealtimeError, asRealtimeError } from "./errors.js";
import { httpBase } from "./http.js";
/** HTTP statuses that no retry will change (the request itself is refused). */
export const FATAL_STATUSES = new Set([401, 403, 404, 410]);
export async function handshake(options) {
    const { headers, query } = await resolveAuth(options.auth, { sockets: true });
    const ws = create(options, withQuery(options.url, query), headers);
    ws.binaryType = "arraybuffer";
    try {
        const hello = await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new RealtimeError("timeout", "no `connected` frame from the server")), options.timeoutMs);
            ws.onmessage = (event) => {
                clearTimeout(timer);
                try {
                    const frame = JSON.parse(String(event.data));
                    if (frame.type !== "connected")
                        throw new Error(`expected "connected", got ${frame.type}`);
                    resolve(frame);
                }
                catch (error) {
                    reject(asRealtimeError(error, "bad_hello"));
                }
            };
            // Some stacks (undici) report a refused handshake with `error` and close much later.
            ws.onerror = () => {
                clearTimeout(timer);
                reject(new ConnectionLost("the connection could not be opened"));
            };
            ws.onclose = (event) => {
                clearTimeout(timer);
                reject(new ConnectionLost(`the connection could not be opened (close ${event.code})`));
            };
        });
        return { ws, hello };
    }
    catch (error) {
        try {
            ws.close();
        }
        catch {
            // already closed
        }
        throw (await diagnose(options, headers)) ?? error;
    }
}
function create(options, url, headers) {
    const Impl = options.WebSocket ?? globalThis.WebSocket;
    if (!Impl) {
        throw new RealtimeError("no_websocket", "no WebSocket here: on Node 20 run with --experimental-websocket or pass the `WebSocket` option");
    }
    if (Object.keys(headers).length === 0)
        return new Impl(url);
    if (!options.WebSocket && "document" in globalThis) {
        throw new RealtimeError("headers_unsupported", "browsers cannot send headers on a WebSocket: use `ticket`");
    }
    return new Impl(url, { headers });
}
/** The server's reason for refusing the upgrade, asked over HTTP; null when it did not
 * refuse the credentials. Not for tickets: asking would spend a valid one. */
async function diagnose(options, headers) {
    if (Object.keys(headers).length === 0 || typeof fetch !== "function")
        return null;
    try {
        const response = await fetch(new URL(new URL(options.url).pathname, httpBase(options.url)), {
            headers,
            signal: AbortSignal.timeout(options.timeoutMs),
        });
        const body = await response.text();
        return FATAL_STATUSES.has(response.status) ? RealtimeError.fromHttp(response.status, body) : null;
    }
    catch {
        return null;
    }
}
