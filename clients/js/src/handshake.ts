/** Opening one WebSocket connection: credentials (asked again for every attempt), the
 * upgrade, and the server's `connected` frame. A refused upgrade says nothing to a WebSocket
 * API, so for header credentials the same URL is asked over HTTP to learn the server's
 * error envelope (401 `unauthorized`, 403 `forbidden`, …). */

import { type Auth, resolveAuth, withQuery } from "./auth.js";
import { ConnectionLost, RealtimeError, asRealtimeError } from "./errors.js";
import { httpBase } from "./http.js";

/** Builds a socket. Node 20: run with `--experimental-websocket` (Node 22+: global), or pass
 * the `ws` package's class; both take headers as `new WebSocket(url, {headers})`. */
export type WebSocketConstructor = new (url: string, options?: unknown) => WebSocket;

export interface Hello {
  type: "connected";
  client_id: string;
  user_id: number;
  server_time: number;
  node?: string;
}

/** HTTP statuses that no retry will change (the request itself is refused). */
export const FATAL_STATUSES = new Set([401, 403, 404, 410]);

interface HandshakeOptions {
  url: string;
  auth: Auth;
  WebSocket?: WebSocketConstructor | undefined;
  timeoutMs: number;
}

export async function handshake(options: HandshakeOptions): Promise<{ ws: WebSocket; hello: Hello }> {
  const { headers, query } = await resolveAuth(options.auth, { sockets: true });
  const ws = create(options, withQuery(options.url, query), headers);
  ws.binaryType = "arraybuffer";
  try {
    const hello = await new Promise<Hello>((resolve, reject) => {
      const timer = setTimeout(() => reject(new RealtimeError("timeout", "no `connected` frame from the server")), options.timeoutMs);
      ws.onmessage = (event) => {
        clearTimeout(timer);
        try {
          const frame = JSON.parse(String(event.data)) as Hello;
          if (frame.type !== "connected") throw new Error(`expected "connected", got ${frame.type}`);
          resolve(frame);
        } catch (error) {
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
  } catch (error) {
    try {
      ws.close();
    } catch {
      // already closed
    }
    throw (await diagnose(options, headers)) ?? error;
  }
}

function create(options: HandshakeOptions, url: string, headers: Record<string, string>): WebSocket {
  const Impl = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
  if (!Impl) {
    throw new RealtimeError("no_websocket", "no WebSocket here: on Node 20 run with --experimental-websocket or pass the `WebSocket` option");
  }
  if (Object.keys(headers).length === 0) return new Impl(url);
  if (!options.WebSocket && "document" in globalThis) {
    throw new RealtimeError("headers_unsupported", "browsers cannot send headers on a WebSocket: use `ticket`");
  }
  return new Impl(url, { headers });
}

/** The server's reason for refusing the upgrade, asked over HTTP; null when it did not
 * refuse the credentials. Not for tickets: asking would spend a valid one. */
async function diagnose(options: HandshakeOptions, headers: Record<string, string>): Promise<RealtimeError | null> {
  if (Object.keys(headers).length === 0 || typeof fetch !== "function") return null;
  try {
    const response = await fetch(new URL(new URL(options.url).pathname, httpBase(options.url)), {
      headers,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const body = await response.text();
    return FATAL_STATUSES.has(response.status) ? RealtimeError.fromHttp(response.status, body) : null;
  } catch {
    return null;
  }
}
