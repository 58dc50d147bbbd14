/**
 * `RealtimeClient`: the WebSocket protocol of docs/PROTOCOL.md with automatic reconnect.
 *
 *     const client = new RealtimeClient({ url: "wss://host/realtime/ws", auth: { token: getToken } });
 *     await client.connect();
 *     const news = await client.subscribe("public:news");
 *     news.on("publication", (p) => console.log(p.data));
 *
 * Every channel remembers the cursor of the last publication it delivered; after a
 * reconnect it is subscribed again with `since`, the server replays what was missed, and the
 * channel says `recovered` (or `gap` when something is lost). Requests are promises with
 * timeouts; server errors reject them as `RealtimeError`, and errors that answer no request
 * arrive as the client's `error` event.
 */

import { type BinaryMessage, decodeMessage, encodeMessage } from "./binary.js";
import { Channel, type Member, type Publication, unsubscribedEvent } from "./channel.js";
import { ConnectionLost, RealtimeError } from "./errors.js";
import { Uploads, type UploadOptions, type FileDone, upload } from "./files.js";
import { ReconnectingSocket, type SocketEvents, type SocketOptions } from "./socket.js";

export interface Ack {
  type: "ack";
  offset?: number;
  cursor?: string;
}

export interface ClientEvents extends SocketEvents {
  /** A server error that answers no request (e.g. a publish flood's `rate_limited`). */
  error: RealtimeError;
  /** `message {data, from}`: `POST /realtime/send` to this connection's `clientId`. */
  message: Record<string, unknown>;
  /** A binary message: an echo, or one published on a subscribed channel. */
  binary: BinaryMessage;
  /** WebRTC signaling frames: `offer`, `answer`, `candidate`, `peer-joined`, `peer-left`. */
  signal: Record<string, unknown>;
  /** Any other frame the SDK does not handle itself. */
  frame: Record<string, unknown>;
}

/** A subscription token, or a callback that returns a fresh one. */
export type TokenSource = string | (() => string | Promise<string>);

export interface SubscribeOptions {
  since?: string;
  token?: TokenSource;
}

const SIGNALS = new Set(["offer", "answer", "candidate", "peer-joined", "peer-left"]);

export class RealtimeClient extends ReconnectingSocket<ClientEvents> {
  #channels = new Map<string, Channel>();
  #first = new Set<Channel>(); // first subscribe in flight: it is retried itself
  #tokens = new WeakMap<Channel, TokenSource>();
  /** @internal */
  readonly uploads = new Uploads();

  constructor(options: SocketOptions) {
    super(options);
  }

  /** The channels followed (subscribed now, or again after the reconnect). */
  get channels(): ReadonlyMap<string, Channel> {
    return this.#channels;
  }

  channel(name: string): Channel | undefined {
    return this.#channels.get(name);
  }

  /** Subscribes; with `since` (a cursor) what was published after it is replayed first.
   * `token`: a subscription token (docs/PROTOCOL.md, "Subscription tokens"), or a callback
   * asked for one before every (re)subscription (tokens expire; a fresh one each time). */
  async subscribe(name: string, { since, token }: SubscribeOptions = {}): Promise<Channel> {
    if (this.#channels.has(name)) throw new RealtimeError("already_subscribed", `already subscribed to ${name}`, name);
    const channel = new Channel(name, since ?? null);
    if (token !== undefined) this.#tokens.set(channel, token);
    this.#channels.set(name, channel);
    this.#first.add(channel);
    try {
      await this.#subscribe(channel, false);
    } catch (error) {
      if (this.#channels.get(name) === channel) this.#channels.delete(name);
      throw error;
    } finally {
      this.#first.delete(channel);
    }
    return channel;
  }

  async unsubscribe(name: string): Promise<void> {
    if (!this.#channels.delete(name) || !this.connected) return;
    try {
      await this.request({ type: "unsubscribe", channel: name });
    } catch (error) {
      if (!(error instanceof ConnectionLost)) throw error;
    }
  }

  /** Publishes JSON `data`; resolves with the ack `{offset, cursor}`. Not resent after a
   * reconnect (it may have been published): rejects with `ConnectionLost` instead. */
  publish(channel: string, data: unknown): Promise<Ack> {
    return this.request<Ack>({ type: "publish", channel, data });
  }

  async presence(channel: string): Promise<Member[]> {
    const reply = await this.request<{ members: Member[] }>({ type: "presence", channel }, { retry: true });
    return reply.members;
  }

  /** A direct message to user `to` (published on `user:<to>` as `{kind: "direct", text}`);
   * without `to` the reply is the server's echo `message {text, from, ts}`. */
  sendText(text: string, to?: number): Promise<Record<string, unknown>> {
    return this.request(to === undefined ? { type: "message", text } : { type: "message", text, to });
  }

  /** `ping` -> `pong {data}`: a round trip to the server. */
  ping(data: unknown = null): Promise<{ type: "pong"; data: unknown }> {
    return this.request({ type: "ping", data }, { retry: true });
  }

  /** A binary message (at most the server's BINARY_MESSAGE_MAX, 64 KiB): published on
   * `channel`, or echoed back (a `binary` event) without one. Resolves with the ack. */
  sendBinary(data: Uint8Array, { mime = "application/octet-stream", filename, channel }: { mime?: string; filename?: string; channel?: string } = {}): Promise<Record<string, unknown>> {
    return this.requestBinary((id) => {
      const header: Record<string, unknown> = { mime, id };
      if (filename !== undefined) header.filename = filename;
      if (channel !== undefined) header.channel = channel;
      return encodeMessage(header, data);
    });
  }

  /** A resumable upload; see `UploadOptions`. Resolves with `file.done` (`file_id`, `url`, `sha256`). */
  upload(data: Blob | Uint8Array, options: UploadOptions = {}): Promise<FileDone> {
    return upload(this, data, options);
  }

  /** A WebRTC signaling frame with no reply (`offer`/`answer`/`candidate` to a peer). */
  signal(frame: Record<string, unknown>): void {
    this.send(JSON.stringify(frame));
  }

  async #subscribe(channel: Channel, resubscribed: boolean): Promise<void> {
    const since = channel.cursor;
    const frame: Record<string, unknown> = { type: "subscribe", channel: channel.name };
    if (since) frame.since = since;
    const token = this.#tokens.get(channel);
    if (token !== undefined) frame.token = typeof token === "string" ? token : await token();
    const reply = await this.request<{ cursor: string | null; recovered: boolean; publications?: Publication[] }>(
      frame,
      { retry: !resubscribed },
    );
    let delivered = 0;
    for (const publication of reply.publications ?? []) if (channel._publication(publication)) delivered += 1;
    channel.cursor = reply.cursor ?? channel.cursor;
    const { cursor, recovered } = { cursor: channel.cursor, recovered: Boolean(reply.recovered) };
    channel._emit("subscribed", { channel: channel.name, cursor, recovered, resubscribed });
    if (since && recovered) channel._emit("recovered", { channel: channel.name, cursor, publications: delivered });
    else if (since) channel._emit("gap", { channel: channel.name, cursor });
  }

  protected onOpen(reconnected: boolean): void {
    if (!reconnected) return;
    for (const channel of this.#channels.values()) {
      if (this.#first.has(channel)) continue;
      this.#subscribe(channel, true).catch((error: unknown) => {
        if (error instanceof ConnectionLost || this.closed) return; // the next reconnect tries again
        if (this.#channels.get(channel.name) === channel) this.#channels.delete(channel.name);
        channel._emit("error", error instanceof RealtimeError ? error : new RealtimeError("client_error", String(error)));
      });
    }
  }

  protected onLost(error: RealtimeError): void {
    this.uploads.fail(error);
  }

  protected onFrame(frame: Record<string, unknown>): void {
    const type = frame.type;
    const channel = typeof frame.channel === "string" ? this.#channels.get(frame.channel) : undefined;
    switch (type) {
      case "publication":
        channel?._publication(frame as unknown as Publication);
        return;
      case "join":
      case "leave":
        channel?._emit(type, { channel: channel.name, info: frame.info as Member });
        return;
      case "gap":
        channel?._emit("gap", { channel: channel.name, cursor: (frame.cursor as string) ?? null });
        return;
      case "unsubscribed":
        // The server ended the subscription (removed from a private channel's members); the
        // answer to our own `unsubscribe` carries its request's id and is settled below.
        if (frame.id === undefined && channel) {
          this.#channels.delete(channel.name);
          channel._emit("unsubscribed", unsubscribedEvent(channel.name, frame));
          return;
        }
        break;
      case "file.ack":
        this.uploads.ack(frame);
        return;
      case "error":
        if (this.settle(frame.ref, frame)) return;
        if (frame.ref === "file") {
          const error = RealtimeError.fromFrame(frame);
          this.uploads.fail(error);
          this.failFileRequests(error);
          return;
        }
        this.emit("error", RealtimeError.fromFrame(frame));
        return;
    }
    if (this.settle(frame.id, frame)) return;
    if (type === "message") this.emit("message", frame);
    else if (typeof type === "string" && SIGNALS.has(type)) this.emit("signal", frame);
    else this.emit("frame", frame);
  }

  protected onBinary(data: Uint8Array): void {
    const message = decodeMessage(data);
    if (!message) return;
    const name = message.header.channel;
    if (typeof name === "string") this.#channels.get(name)?._emit("binary", message);
    this.emit("binary", message);
  }
}
