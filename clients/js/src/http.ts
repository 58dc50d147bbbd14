/** REST calls of the realtime API with the client's credentials; a non-2xx answer rejects
 * with the server's error envelope as a `RealtimeError` (code, message, status as `ref`). */

import { type Auth, resolveAuth } from "./auth.js";
import { RealtimeError, asRealtimeError } from "./errors.js";

export interface HttpOptions {
  baseUrl: string;
  auth: Auth;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export async function requestJson<T>(
  options: HttpOptions,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const { headers } = await resolveAuth(options.auth);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const fetchImpl = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await fetchImpl(new URL(path, options.baseUrl), {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw asRealtimeError(error, "network_error");
  }
  const text = await response.text();
  if (!response.ok) throw RealtimeError.fromHttp(response.status, text);
  return (text ? JSON.parse(text) : null) as T;
}

/** `http(s)://host/` for a `ws(s)://` or `http(s)://` URL. */
export function httpBase(url: string): string {
  const parsed = new URL(url);
  parsed.protocol = parsed.protocol === "wss:" ? "https:" : parsed.protocol === "ws:" ? "http:" : parsed.protocol;
  return `${parsed.protocol}//${parsed.host}/`;
}
