// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/** REST calls of the realtime API with the client's credentials; a non-2xx answer rejects
 * with the server's error envelope as a `RealtimeError` (code, message, status as `ref`). */
import { resolveAuth } from "./auth.js";
import { RealtimeError, asRealtimeError } from "./errors.js";
export async function requestJson(options, method, path, body) {
    const { headers } = await resolveAuth(options.auth);
    if (body !== undefined)
        headers["Content-Type"] = "application/json";
    const fetchImpl = options.fetch ?? fetch;
    let response;
    try {
        response = await fetchImpl(new URL(path, options.baseUrl), {
            method,
            headers,
            body: body === undefined ? null : JSON.stringify(body),
            signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        });
    }
    catch (error) {
        throw asRealtimeError(error, "network_error");
    }
    const text = await response.text();
    if (!response.ok)
        throw RealtimeError.fromHttp(response.status, text);
    return (text ? JSON.parse(text) : null);
}
/** `http(s)://host/` for a `ws(s)://` or `http(s)://` URL. */
export function httpBase(url) {
    const parsed = new URL(url);
    parsed.protocol = parsed.protocol === "wss:" ? "https:" : parsed.protocol === "ws:" ? "http:" : parsed.protocol;
    return `${parsed.protocol}//${parsed.host}/`;
}
