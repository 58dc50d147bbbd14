// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
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
import { Emitter } from "./emitter.js";
/** The `unsubscribed` event of a server's `unsubscribed` frame (WebSocket or SSE). */
export function unsubscribedEvent(channel, frame) {
    return { channel, code: String(frame.code ?? "unsubscribed"), reason: String(frame.reason ?? "") };
}
export function validCursor(cursor) {
    return typeof cursor === "string" && /^[^:]+:\d+$/.test(cursor);
}
export class Channel extends Emitter {
    name;
    /** The cursor of the last publication delivered (or the position given by the server). */
    cursor;
    constructor(name, since = null) {
        super();
        this.name = name;
        this.cursor = since;
    }
    /** @internal Delivers `publication` unless it was delivered before; false for a repeat. */
    _publication(publication) {
        const last = this.cursor;
        if (last) {
            const [epoch, offset] = splitCursor(last);
            if (epoch === publication.epoch && publication.offset <= offset)
                return false;
        }
        this.cursor = publication.cursor;
        this.emit("publication", publication);
        return true;
    }
    /** @internal */
    _emit(event, value) {
        if (event === "gap")
            this.cursor = value.cursor;
        this.emit(event, value);
    }
}
function splitCursor(cursor) {
    const at = cursor.lastIndexOf(":");
    return [cursor.slice(0, at), Number(cursor.slice(at + 1))];
}
