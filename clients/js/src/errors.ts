/**
 * Every failure the SDK reports is a `RealtimeError`: a server `error` frame, an HTTP error
 * envelope, a timeout or a lost connection. Promises reject with one; nothing is thrown
 * elsewhere.
 *
 *     RealtimeError            code, message, ref (request id, frame type, HTTP status), details
 *     ├── ConnectionLost       the connection dropped while a request waited (code "connection_lost")
 *     ├── ConnectionClosed     no more connections: closed, refused, or gave up (code "closed"…)
 *     └── RecoveryFailed       SSE: the position asked for is beyond the history
 */

export type Ref = number | string | null;

export class RealtimeError extends Error {
  override readonly name: string = "RealtimeError";
  /** The server's error code (`forbidden`, `bad_channel`, …) or one of the SDK's own. */
  readonly code: string;
  /** What the error answers: the request's `id`, a frame type, `"file"`, an HTTP status. */
  readonly ref: Ref;
  /** Extra facts the server gave (`invalid`: the fields; `offset_mismatch`: `expected`). */
  readonly details: unknown;
  /** HTTP status, when the error came from an HTTP response. */
  readonly status: number | undefined;

  constructor(code: string, message: string, ref: Ref = null, details?: unknown, status?: number) {
    super(message);
    this.code = code;
    this.ref = ref;
    this.details = details;
    this.status = status;
  }

  /** An `{"type": "error", code, message, ref, details?}` frame (or an SSE error event). */
  static fromFrame(frame: Record<string, unknown>): RealtimeError {
    const ref = frame.ref ?? frame.channel ?? null;
    return new RealtimeError(
      String(frame.code ?? "error"),
      String(frame.message ?? "the server reported an error"),
      typeof ref === "number" || typeof ref === "string" ? ref : null,
      frame.details,
    );
  }

  /** The REST error envelope `{"error": {"code", "message", "details"?}}`. */
  static fromHttp(status: number, body: string): RealtimeError {
    try {
      const error = (JSON.parse(body) as { error?: Record<string, unknown> }).error;
      if (error && typeof error.code === "string") {
        return new RealtimeError(error.code, String(error.message ?? ""), status, error.details, status);
      }
    } catch {
      // not JSON: fall through
    }
    return new RealtimeError(`http_${status}`, body.slice(0, 200) || `HTTP ${status}`, status, undefined, status);
  }
}

export class ConnectionLost extends RealtimeError {
  override readonly name: string = "ConnectionLost";
  constructor(message = "the connection was lost") {
    super("connection_lost", message);
  }
}

export class ConnectionClosed extends RealtimeError {
  override readonly name: string = "ConnectionClosed";
  /** The WebSocket close code or SSE `close` code, when the server gave one. */
  readonly closeCode: number | undefined;
  constructor(message: string, code = "closed", closeCode?: number) {
    super(code, message, closeCode ?? null);
    this.closeCode = closeCode;
  }
}

export class RecoveryFailed extends RealtimeError {
  override readonly name: string = "RecoveryFailed";
  constructor(readonly channel: string, readonly cursor: string | null) {
    super("recovery_failed", `${channel}: the position asked for is no longer in the history`, channel);
  }
}

/** Wraps anything thrown into a RealtimeError (so callers handle one type). */
export function asRealtimeError(error: unknown, code = "client_error"): RealtimeError {
  if (error instanceof RealtimeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RealtimeError(code, message);
}
