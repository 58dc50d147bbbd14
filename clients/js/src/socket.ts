/**
 * The reconnecting WebSocket under `RealtimeClient`: authenticates every attempt (asking the
 * credential callbacks again), waits for the server's `connected` frame, keeps the requests
 * waiting for replies, and reconnects with exponential backoff and jitter when the
 * connection drops. It stops for good when closed, refused (HTTP 401/403, close 4001/4003),
 * or after `maxReconnectAttempts`.
 */

import type { Auth } from "./auth.js";
import { Emitter } from "./emitter.js";
import { ConnectionClosed, ConnectionLost, RealtimeError, asRealtimeError } from "./errors.js";
import { FATAL_STATUSES, type Hello, type WebSocketConstructor, handshake } from "./handshake.js";

export type { Hello, WebSocketConstructor };

export interface SocketOptions {
  /** `ws(s)://host/realtime/ws` (or `…/realtime/webrtc/signaling`). */
  url: string;
  auth: Auth;
  WebSocket?: WebSocketConstructor;
  reconnect?: boolean;
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  maxReconnectAttempts?: number;
  /** How long a request waits for its reply (and a connection attempt for `connected`). */
  timeoutMs?: number;
}

export interface SocketEvents {
  connected: Hello & { reconnected: boolean };
  disconnected: { code: number; reason: string };
  reconnecting: { attempt: number; delayMs: number };
  closed: RealtimeError;
  /** Every JSON frame sent (`out`) or received (`in`) after the handshake: for protocol logs
   * and debugging pages. Costs nothing without a listener. */
  trace: { direction: "in" | "out"; frame: Record<string, unknown> };
}

const NO_RECONNECT = new Set([4001, 4003]);

interface Pending {
  resolve(frame: Record<string, unknown>): void;
  reject(error: RealtimeError): void;
  timer: ReturnType<typeof setTimeout>;
  file: boolean;
}

export abstract class ReconnectingSocket<Events extends SocketEvents> extends Emitter<Events> {
  readonly options: Required<Omit<SocketOptions, "WebSocket" | "maxReconnectAttempts">> &
    Pick<SocketOptions, "WebSocket" | "maxReconnectAttempts">;
  #ws: WebSocket | null = null;
  #hello: Hello | null = null;
  #failure: RealtimeError | null = null;
  #closing = false;
  #started = false;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #waiters: { resolve(): void; reject(error: RealtimeError): void }[] = [];
  #pending = new Map<number, Pending>();
  #nextId = 1;
  /** How many times the client reconnected. */
  reconnects = 0;

  constructor(options: SocketOptions) {
    super();
    this.options = {
      reconnect: true,
      reconnectDelayMs: 250,
      maxReconnectDelayMs: 10_000,
      timeoutMs: 10_000,
      ...options,
    };
  }

  get clientId(): string | null {
    return this.#hello?.client_id ?? null;
  }
  get userId(): number | null {
    return this.#hello?.user_id ?? null;
  }
  get connected(): boolean {
    return this.#ws !== null && this.#hello !== null && this.#ws.readyState === 1;
  }
  get closed(): boolean {
    return this.#failure !== null;
  }

  protected abstract onFrame(frame: Record<string, unknown>): void;
  protected abstract onBinary(data: Uint8Array): void;
  protected abstract onOpen(reconnected: boolean): void;
  protected abstract onLost(error: RealtimeError): void;

  /** Opens the first connection; rejects (and gives up) when it fails. */
  async connect(): Promise<Hello> {
    if (this.#started) throw new RealtimeError("already_connected", "connect() was called before");
    this.#started = true;
    try {
      await this.#open();
    } catch (error) {
      this.#finish(asRealtimeError(error));
      throw error;
    }
    return this.#hello!;
  }

  /** Closes the connection for good: pending requests reject with `ConnectionClosed`. */
  close(): void {
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#ws?.close(1000, "client closed");
    this.#lost(new ConnectionClosed("the client was closed"));
    this.#finish(new ConnectionClosed("the client was closed"));
  }

  /** Drops the current connection and reconnects at once (recovering every channel). */
  reconnect(): void {
    if (this.#failure !== null || this.#ws === null) return;
    this.#ws.close(1000, "reconnect");
  }

  /** Resolves once connected (at once when connected; after the reconnect otherwise). */
  ready(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (!this.#started) return Promise.reject(new RealtimeError("not_connected", "call connect() first"));
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Sends a frame with a new `id` and waits for the reply (an `error` rejects). With
   * `retry`, a request lost with the connection is sent again after the reconnect. */
  async request<T = Record<string, unknown>>(
    frame: Record<string, unknown>,
    { retry = false, timeoutMs = this.options.timeoutMs, file = false } = {},
  ): Promise<T> {
    for (;;) {
      await this.ready();
      try {
        return (await this.#call((id) => JSON.stringify({ ...frame, id }), timeoutMs, file)) as T;
      } catch (error) {
        if (!(error instanceof ConnectionLost) || !retry || this.#failure) throw error;
      }
    }
  }

  /** Like `request`, for an encoder that puts the id in a binary frame. */
  protected async requestBinary(encode: (id: number) => Uint8Array): Promise<Record<string, unknown>> {
    await this.ready();
    return this.#call(encode, this.options.timeoutMs, false);
  }

  #call(encode: (id: number) => string | Uint8Array, timeoutMs: number, file: boolean): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RealtimeError("timeout", `no reply within ${timeoutMs} ms`, id));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, file });
      try {
        this.send(encode(id));
      } catch (error) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(asRealtimeError(error));
      }
    });
  }

  /** Sends now; `ConnectionLost` when not connected. */
  send(payload: string | Uint8Array): void {
    const ws = this.#ws;
    if (ws === null || !this.connected) throw new ConnectionLost();
    ws.send(payload);
    if (typeof payload === "string" && this.listenerCount("trace") > 0) {
      this.emit("trace", { direction: "out", frame: JSON.parse(payload) } as Events["trace"]);
    }
  }

  /** Bytes queued in the socket but not yet sent. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** @internal A reply (or error) for request `id`; false when nobody waits for it. */
  protected settle(id: unknown, frame: Record<string, unknown>): boolean {
    if (typeof id !== "number") return false;
    const pending = this.#pending.get(id);
    if (!pending) return false;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (frame.type === "error") pending.reject(RealtimeError.fromFrame(frame));
    else pending.resolve(frame);
    return true;
  }

  /** @internal Rejects the requests waiting for a `file.*` reply (upload errors say "file"). */
  protected failFileRequests(error: RealtimeError): void {
    for (const [id, pending] of this.#pending) {
      if (!pending.file) continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  async #open(): Promise<void> {
    const { ws, hello } = await handshake(this.options);
    this.#ws = ws;
    this.#hello = hello;
    ws.onmessage = (event) => this.#receive(event.data);
    ws.onerror = null; // `close` follows and says everything
    ws.onclose = (event) => this.#closed(ws, event.code, event.reason);
    const reconnected = this.#attempt > 0 || this.reconnects > 0;
    this.#attempt = 0;
    this.onOpen(reconnected);
    this.emit("connected", { ...hello, reconnected } as Events["connected"]);
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }

  #receive(data: unknown): void {
    if (typeof data === "string") {
      let frame: unknown;
      try {
        frame = JSON.parse(data);
      } catch {
        return;
      }
      if (!frame || typeof frame !== "object" || Array.isArray(frame)) return;
      this.emit("trace", { direction: "in", frame } as Events["trace"]);
      this.onFrame(frame as Record<string, unknown>);
    } else if (data instanceof ArrayBuffer) {
      this.onBinary(new Uint8Array(data));
    }
  }

  #closed(ws: WebSocket, code: number, reason: string): void {
    if (this.#ws !== ws) return;
    this.#ws = null;
    this.#lost(new ConnectionLost(`the connection was lost (close ${code})`));
    this.emit("disconnected", { code, reason } as Events["disconnected"]);
    if (this.#closing || this.#failure) return;
    if (!this.options.reconnect || NO_RECONNECT.has(code)) {
      this.#finish(new ConnectionClosed(reason || "the server closed the connection", "closed", code));
      return;
    }
    this.#schedule();
  }

  #schedule(): void {
    const max = this.options.maxReconnectAttempts;
    if (max !== undefined && this.#attempt >= max) {
      this.#finish(new ConnectionClosed("gave up reconnecting", "reconnect_failed"));
      return;
    }
    const { reconnectDelayMs: base, maxReconnectDelayMs: ceiling } = this.options;
    const delayMs = Math.min(ceiling, base * 2 ** this.#attempt) * (0.5 + Math.random() / 2);
    this.#attempt += 1;
    this.emit("reconnecting", { attempt: this.#attempt, delayMs } as Events["reconnecting"]);
    this.#timer = setTimeout(() => {
      this.#open().then(
        () => {
          this.reconnects += 1;
        },
        (error: unknown) => {
          if (this.#closing || this.#failure) return;
          const refused = error instanceof RealtimeError && error.status !== undefined && FATAL_STATUSES.has(error.status);
          if (refused) this.#finish(error as RealtimeError);
          else this.#schedule();
        },
      );
    }, delayMs);
  }

  #lost(error: RealtimeError): void {
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(error);
    }
    this.onLost(error);
  }

  #finish(error: RealtimeError): void {
    if (this.#failure) return;
    this.#failure = error;
    clearTimeout(this.#timer);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.onLost(error);
    this.emit("closed", error as Events["closed"]);
  }
}
