/**
 * `PrivateChannels`: the REST API of private channels (docs/PROTOCOL.md, "Private
 * channels"). You create `private:<name>` and own it; the owner and admins add and remove
 * members; members subscribe to `channel` with `RealtimeClient.subscribe` as to any other.
 *
 *     const rooms = new PrivateChannels({ baseUrl: "https://host", auth: { token } });
 *     const { channel } = await rooms.create("project-42");
 *     await rooms.add("project-42", 7);
 */

import { type HttpOptions, requestJson } from "./http.js";

export interface PrivateChannel {
  /** What to subscribe to: `private:<name>`. */
  channel: string;
  name: string;
  owner_id: number;
  created_at: string;
  /** Yours there (null: an admin who is not a member). */
  role: "owner" | "member" | null;
}

export interface PrivateMember {
  user_id: number;
  role: "owner" | "member";
  added_at: string;
}

export interface PrivateMembers {
  channel: string;
  owner_id: number;
  members: PrivateMember[];
}

const BASE = "/realtime/private-channels";

export class PrivateChannels {
  constructor(readonly options: HttpOptions) {}

  /** A new channel you own (409 `channel_exists` when the name is taken). */
  create(name: string): Promise<PrivateChannel> {
    return requestJson(this.options, "POST", BASE, { name });
  }

  /** The channels you are a member of (admins: every channel). */
  list(): Promise<PrivateChannel[]> {
    return requestJson(this.options, "GET", BASE);
  }

  /** Deletes it (owner or admin); every member's live subscription ends. */
  async delete(name: string): Promise<void> {
    await requestJson(this.options, "DELETE", `${BASE}/${encodeURIComponent(name)}`);
  }

  members(name: string): Promise<PrivateMembers> {
    return requestJson(this.options, "GET", `${BASE}/${encodeURIComponent(name)}/members`);
  }

  /** Adds user `userId` (owner or admin). */
  async add(name: string, userId: number): Promise<void> {
    await requestJson(this.options, "PUT", `${BASE}/${encodeURIComponent(name)}/members/${userId}`);
  }

  /** Removes user `userId` (owner or admin): their live subscriptions end at once. */
  async remove(name: string, userId: number): Promise<void> {
    await requestJson(this.options, "DELETE", `${BASE}/${encodeURIComponent(name)}/members/${userId}`);
  }
}
