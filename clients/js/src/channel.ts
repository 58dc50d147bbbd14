/**
 * One channel as the app sees it, the same over WebSocket and SSE. It remembers the cursor
 * of the last publication it delivered, drops repeats (a replay after a reconnect may
 * repeat what came live), and tells the app how each (re)subscription went:
 *
 * - `subscribed` {cursor, recovered, resubscribed}: after every subscribe;
 * - `recovered` {cursor, publications}: a resubscription got everything missed (they were
 *   delivered as `publication` events first);
 * - `gap` {cursor}: something missed is lost (beyond the history, or the server lost Redis):
 *   reload what you derive from the channel, then go on from `cursor`.
 */

import type { BinaryMessage } from "./binary.js";
import { Emitter } from "./emitter.js";
import type { RealtimeError } from "./errors.js";

export interface Sender {
  user_id: number | null;
  client_id: string | null;
}

export interface Publication<T = unknown> {
  channel: string;
  offset: number;
  epoch: string;
  cursor: string;
  from: Sender;
  ts: number;
  data: T;
}

export interface Member {
  client_id: string;
  user_id: number;
  transport: string;
}

export interface ChannelEvents {
  publication: Publication;
  subscribed: { channel: string; cursor: string | null; recovered: boolean; resubscribed: boolean };
  recovered: { channel: string; cursor: string | null; publications: number };
  gap: { channel: string; cursor: string | null };
  join: { channel: string; info: Member };
  leave: { channel: string; info: Member };
  binary: BinaryMessage;
  /** The server ended the subscription (`code` "removed": you were removed from a private
   * channel's members, or it was deleted); the channel is no longer followed. */
  unsubscribed: { channel: string; code: string; reason: string };
  /** The channel could not be (re)subscribed; it is no longer followed. */
  error: RealtimeError;
}

/** The `unsubscribed` event of a server's `unsubscribed` frame (WebSocket or SSE). */
export function unsubscribedEvent(channel: string, frame: Record<string, unknown>): ChannelEvents["unsubscribed"] {
  return { channel, code: String(frame.code ?? "unsubscribed"), reason: String(frame.reason ?? "") };
}

export function validCursor(cursor: unknown): cursor is string {
  return typeof cursor === "string" && /^[^:]+:\d+$/.test(cursor);
}

export class Channel extends Emitter<ChannelEvents> {
  /** The cursor of the last publication delivered (or the position given by the server). */
  cursor: string | null;

  constructor(readonly name: string, since: string | null = null) {
    super();
    this.cursor = since;
  }

  /** @internal Delivers `publication` unless it was delivered before; false for a repeat. */
  _publication(publication: Publication): boolean {
    const last = this.cursor;
    if (last) {
      const [epoch, offset] = splitCursor(last);
      if (epoch === publication.epoch && publication.offset <= offset) return false;
    }
    this.cursor = publication.cursor;
    this.emit("publication", publication);
    return true;
  }

  /** @internal */
  _emit<K extends keyof ChannelEvents>(event: K, value: ChannelEvents[K]): void {
    if (event === "gap") this.cursor = (value as ChannelEvents["gap"]).cursor;
    this.emit(event, value);
  }
}

function splitCursor(cursor: string): [string, number] {
  const at = cursor.lastIndexOf(":");
  return [cursor.slice(0, at), Number(cursor.slice(at + 1))];
}
