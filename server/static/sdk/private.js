// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/**
 * `PrivateChannels`: the REST API of private channels (docs/PROTOCOL.md, "Private
 * channels"). You create `private:<name>` and own it; the owner and admins add and remove
 * members; members subscribe to `channel` with `RealtimeClient.subscribe` as to any other.
 *
 *     const rooms = new PrivateChannels({ baseUrl: "https://host", auth: { token } });
 *     const { channel } = await rooms.create("project-42");
 *     await rooms.add("project-42", 7);
 */
import { requestJson } from "./http.js";
const BASE = "/realtime/private-channels";
export class PrivateChannels {
    options;
    constructor(options) {
        this.options = options;
    }
    /** A new channel you own (409 `channel_exists` when the name is taken). */
    create(name) {
        return requestJson(this.options, "POST", BASE, { name });
    }
    /** The channels you are a member of (admins: every channel). */
    list() {
        return requestJson(this.options, "GET", BASE);
    }
    /** Deletes it (owner or admin); every member's live subscription ends. */
    async delete(name) {
        await requestJson(this.options, "DELETE", `${BASE}/${encodeURIComponent(name)}`);
    }
    members(name) {
        return requestJson(this.options, "GET", `${BASE}/${encodeURIComponent(name)}/members`);
    }
    /** Adds user `userId` (owner or admin). */
    async add(name, userId) {
        await requestJson(this.options, "PUT", `${BASE}/${encodeURIComponent(name)}/members/${userId}`);
    }
    /** Removes user `userId` (owner or admin): their live subscriptions end at once. */
    async remove(name, userId) {
        await requestJson(this.options, "DELETE", `${BASE}/${encodeURIComponent(name)}/members/${userId}`);
    }
}
