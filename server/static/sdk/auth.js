// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/**
 * Credentials for every request and (re)connection. Each is a string or a function returning
 * a fresh one, asked again before every connection attempt:
 *
 * - `token`: an access token, sent as `Authorization: Bearer` (browsers and Node; WebSocket
 *   headers need Node, so browsers use a ticket for sockets and event streams);
 * - `apiKey`: an API key with the `realtime` scope, sent as `X-API-Key` (Node only: never
 *   put a key in a page);
 * - `ticket`: a single-use ticket (`POST /auth/ws-ticket`), the one secret the protocol
 *   allows in a URL (`?ticket=`). Pass a function: a reconnect needs a new one.
 */
import { RealtimeError } from "./errors.js";
async function resolve(value) {
    if (value === undefined)
        return undefined;
    return typeof value === "function" ? await value() : value;
}
/** Headers and query parameters for one request or connection attempt. */
export async function resolveAuth(auth, { sockets = false } = {}) {
    const headers = {};
    const query = {};
    // A ticket is single-use: take one only for a socket or stream that needs it.
    const ticket = sockets ? await resolve(auth.ticket) : undefined;
    if (ticket) {
        query.ticket = ticket;
        return { headers, query };
    }
    const token = await resolve(auth.token);
    const apiKey = await resolve(auth.apiKey);
    if (token)
        headers.Authorization = `Bearer ${token}`;
    if (apiKey)
        headers["X-API-Key"] = apiKey;
    return { headers, query };
}
/** Fetches a ticket with an access token: `ticket: ticketFrom(baseUrl, () => token)`. */
export function ticketFrom(baseUrl, token, fetchImpl = fetch) {
    return async () => {
        const access = await resolve(token);
        const response = await fetchImpl(new URL("/auth/ws-ticket", baseUrl), {
            method: "POST",
            headers: { Authorization: `Bearer ${access}` },
        });
        const text = await response.text();
        if (!response.ok)
            throw RealtimeError.fromHttp(response.status, text);
        return JSON.parse(text).ticket;
    };
}
/** `url` with `query` added. */
export function withQuery(url, query) {
    const result = new URL(url);
    for (const [name, value] of Object.entries(query))
        result.searchParams.set(name, value);
    return result.toString();
}
