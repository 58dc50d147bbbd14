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

export type Credential = string | (() => string | Promise<string>);

export interface Auth {
  token?: Credential;
  apiKey?: Credential;
  ticket?: Credential;
}

export interface ResolvedAuth {
  headers: Record<string, string>;
  query: Record<string, string>;
}

async function resolve(value: Credential | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  return typeof value === "function" ? await value() : value;
}

/** Headers and query parameters for one request or connection attempt. */
export async function resolveAuth(auth: Auth, { sockets = false } = {}): Promise<ResolvedAuth> {
  const headers: Record<string, string> = {};
  const query: Record<string, string> = {};
  // A ticket is single-use: take one only for a socket or stream that needs it.
  const ticket = sockets ? await resolve(auth.ticket) : undefined;
  if (ticket) {
    query.ticket = ticket;
    return { headers, query };
  }
  const token = await resolve(auth.token);
  const apiKey = await resolve(auth.apiKey);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (apiKey) headers["X-API-Key"] = apiKey;
  return { headers, query };
}

/** Fetches a ticket with an access token: `ticket: ticketFrom(baseUrl, () => token)`. */
export function ticketFrom(baseUrl: string, token: Credential, fetchImpl: typeof fetch = fetch): () => Promise<string> {
  return async () => {
    const access = await resolve(token);
    const response = await fetchImpl(new URL("/auth/ws-ticket", baseUrl), {
      method: "POST",
      headers: { Authorization: `Bearer ${access}` },
    });
    const text = await response.text();
    if (!response.ok) throw RealtimeError.fromHttp(response.status, text);
    return (JSON.parse(text) as { ticket: string }).ticket;
  };
}

/** `url` with `query` added. */
export function withQuery(url: string | URL, query: Record<string, string>): string {
  const result = new URL(url);
  for (const [name, value] of Object.entries(query)) result.searchParams.set(name, value);
  return result.toString();
}
