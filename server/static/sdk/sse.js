// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/**
 * `RealtimeEvents`: Server-Sent Events (`GET /realtime/events?channels=a,b`) through the same
 * `Channel` API as the WebSocket client, read with `fetch` streaming in browsers and Node
 * alike. (Not `EventSource`: it can send no `Authorization` header, and its own reconnection
 * would reuse a single-use ticket.) Each channel remembers its cursor; a reconnect sends
 * them as `Last-Event-ID`, the server replays what was missed, and each channel says
 * `recovered`, or `gap` when the history no longer holds it (the server's `recovery-failed`:
 * the stream goes on live from the position it gives).
 */
import { resolveAuth, withQuery } from "./auth.js";
import { base64ToBytes } from "./binary.js";
import { Channel, unsubscribedEvent, validCursor } from "./channel.js";
import { Emitter } from "./emitter.js";
import { ConnectionClosed, RealtimeError, asRealtimeError } from "./errors.js";
const NO_RECONNECT = new Set([4001, 4003]);
export class RealtimeEvents extends Emitter {
    channels = new Map();
    #options;
    #abort = null;
    #closed = null;
    #recovering = new Map(); // channel -> publications replayed so far
    #retryMs = null;
    reconnects = 0;
    constructor(options) {
        super();
        this.#options = { reconnect: true, reconnectDelayMs: 500, maxReconnectDelayMs: 30_000, ...options };
        for (const name of options.channels)
            this.channels.set(name, new Channel(name));
        if (options.lastEventId)
            this.#remember(options.lastEventId, null);
    }
    channel(name) {
        const channel = this.channels.get(name);
        if (!channel)
            throw new RealtimeError("not_subscribed", `${name} is not one of this stream's channels`, name);
        return channel;
    }
    /** What a reconnect sends as Last-Event-ID. */
    get lastEventId() {
        const known = [...this.channels.values()].filter((c) => c.cursor);
        if (this.channels.size === 1)
            return known[0]?.cursor ?? null;
        return known.map((c) => `${c.name}=${c.cursor}`).join(",") || null;
    }
    /** Opens the stream; resolves at the first `connected` event, rejects if refused. The
     * stream then runs (and reconnects) until `close()`. */
    start() {
        return new Promise((resolve, reject) => {
            const off = this.once("connected", () => {
                offClosed();
                resolve();
            });
            const offClosed = this.once("closed", (error) => {
                off();
                reject(error);
            });
            void this.#run();
        });
    }
    close() {
        this.#finish(new ConnectionClosed("the stream was closed"));
    }
    /** Drops the stream and reconnects with Last-Event-ID at once. */
    reconnect() {
        this.#abort?.abort();
    }
    #finish(error) {
        if (this.#closed)
            return;
        this.#closed = error;
        this.#abort?.abort();
        this.emit("closed", error);
    }
    async #run() {
        let failures = 0;
        while (!this.#closed) {
            let closeCode = null;
            try {
                closeCode = await this.#stream(() => (failures = 0));
            }
            catch (error) {
                const failure = asRealtimeError(error, "network_error");
                if (failure.status !== undefined && failure.status !== 503 && failure.status < 500) {
                    this.#finish(failure);
                    return;
                }
            }
            if (this.#closed)
                return;
            this.emit("disconnected", { code: closeCode, reason: "" });
            if (closeCode !== null && (NO_RECONNECT.has(closeCode) || this.channels.size === 0)) {
                this.#finish(new ConnectionClosed("the server ended the stream", "closed", closeCode));
                return;
            }
            if (!this.#options.reconnect) {
                this.#finish(new ConnectionClosed("the stream ended"));
                return;
            }
            const base = this.#retryMs ?? this.#options.reconnectDelayMs;
            const delay = Math.min(this.#options.maxReconnectDelayMs, base * 2 ** failures) * (0.5 + Math.random() / 2);
            failures += 1;
            await new Promise((resolve) => setTimeout(resolve, failures === 1 ? 0 : delay));
            this.reconnects += 1;
        }
    }
    /** One connection: the close code the server gave, or null. */
    async #stream(alive) {
        const { headers, query } = await resolveAuth(this.#options.auth, { sockets: true });
        const url = new URL(this.#options.url);
        if (!url.pathname.endsWith("/realtime/events"))
            url.pathname = "/realtime/events";
        const target = withQuery(url, { ...query, channels: [...this.channels.keys()].join(",") });
        const resume = this.lastEventId;
        if (resume)
            headers["Last-Event-ID"] = resume;
        const tokens = this.#options.subscriptionTokens;
        const granted = typeof tokens === "function" ? await tokens() : tokens;
        if (granted?.length)
            headers["X-Subscription-Token"] = granted.join(",");
        this.#recovering = new Map([...this.channels.values()].filter((c) => c.cursor).map((c) => [c.name, 0]));
        this.#abort = new AbortController();
        const response = await (this.#options.fetch ?? fetch)(target, {
            headers: { Accept: "text/event-stream", "Cache-Control": "no-cache", ...headers },
            signal: this.#abort.signal,
        });
        if (!response.ok || !response.body)
            throw RealtimeError.fromHttp(response.status, await response.text());
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let closeCode = null;
        let event = { event: "", data: "", id: null };
        let dataLines = [];
        for (;;) {
            const { value, done } = await reader.read();
            if (done)
                return closeCode;
            buffer += value;
            let newline;
            while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
                const line = buffer.slice(0, newline);
                buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
                if (line === "") {
                    if (dataLines.length || event.event) {
                        event.data = dataLines.join("\n");
                        alive();
                        closeCode = this.#dispatch(event) ?? closeCode;
                    }
                    event = { event: "", data: "", id: null };
                    dataLines = [];
                    continue;
                }
                if (line.startsWith(":"))
                    continue;
                const colon = line.indexOf(":");
                const field = colon < 0 ? line : line.slice(0, colon);
                const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
                if (field === "data")
                    dataLines.push(text);
                else if (field === "event")
                    event.event = text;
                else if (field === "id")
                    event.id = text;
                else if (field === "retry" && /^\d+$/.test(text))
                    this.#retryMs = Number(text);
            }
        }
    }
    /** Handles one event; a close code when it is the server's `close`. */
    #dispatch(raw) {
        let data = {};
        try {
            data = JSON.parse(raw.data);
        }
        catch {
            // events without JSON data carry nothing we use
        }
        const name = typeof data.channel === "string" ? data.channel : null;
        const channel = name ? this.channels.get(name) : undefined;
        switch (raw.event) {
            case "connected":
                this.emit("connected", { ...data, reconnected: this.reconnects > 0 });
                break;
            case "publication":
                if (channel?._publication(data) && this.#recovering.has(channel.name)) {
                    this.#recovering.set(channel.name, this.#recovering.get(channel.name) + 1);
                }
                break;
            case "subscribed":
                if (channel)
                    this.#subscribed(channel, data);
                break;
            case "join":
            case "leave":
                channel?._emit(raw.event, { channel: channel.name, info: data.info });
                break;
            case "unsubscribed":
                if (channel) {
                    this.channels.delete(channel.name); // not asked for again after a reconnect
                    channel._emit("unsubscribed", unsubscribedEvent(channel.name, data));
                }
                break;
            case "gap":
            case "recovery-failed":
                channel?._emit("gap", { channel: channel.name, cursor: data.cursor ?? null });
                break;
            case "binary": {
                const { data_base64, ...header } = data;
                channel?._emit("binary", { header: header, data: base64ToBytes(String(data_base64 ?? "")) });
                break;
            }
            case "message":
                this.emit("message", data);
                break;
            case "error": {
                const error = RealtimeError.fromFrame(data);
                if (channel)
                    channel._emit("error", error);
                this.emit("error", error);
                break;
            }
            case "close":
                return typeof data.code === "number" ? data.code : null;
        }
        if (raw.id !== null)
            this.#remember(raw.id, name);
        return null;
    }
    #subscribed(channel, data) {
        const recovered = Boolean(data.recovered);
        const resumed = this.#recovering.get(channel.name);
        if (validCursor(data.cursor))
            channel.cursor = data.cursor;
        const cursor = channel.cursor;
        channel._emit("subscribed", { channel: channel.name, cursor, recovered, resubscribed: resumed !== undefined });
        if (resumed !== undefined && recovered)
            channel._emit("recovered", { channel: channel.name, cursor, publications: resumed });
        this.#recovering.delete(channel.name);
    }
    /** Keeps each channel's cursor from an event id (`cursor`, or `a=cursor,b=cursor`). */
    #remember(id, channel) {
        if (id.includes("=")) {
            for (const part of id.split(",")) {
                const at = part.indexOf("=");
                const target = this.channels.get(part.slice(0, at));
                const cursor = part.slice(at + 1);
                if (target && validCursor(cursor))
                    target.cursor = cursor;
            }
            return;
        }
        const target = this.channels.size === 1 ? [...this.channels.values()][0] : channel ? this.channels.get(channel) : undefined;
        if (target && validCursor(id))
            target.cursor = id;
    }
}
