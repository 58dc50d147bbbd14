/**
 * WebRTC helpers for browsers (they need `RTCPeerConnection`):
 *
 * - `iceServers(http)`: `GET /realtime/webrtc/ice-servers`, ready for `new RTCPeerConnection`;
 * - `connectToServer(http, setup)`: a peer connection to the server's own peer through
 *   `POST /realtime/webrtc/offer` (WHIP-style, no socket needed). A data channel labelled
 *   `echo` echoes; one labelled with a hub channel (`public:lobby`) bridges to it;
 * - `Room`: join a room over the client's socket, call the server peer or another member,
 *   answer members' offers, with candidates trickled through signaling;
 * - `BridgeCursors` and `ServerBridges`: bridged data channels that survive a network change
 *   (Wi-Fi to mobile). The server peer (aiortc) has no ICE restart, so a new peer connection
 *   resumes each channel from its last cursor: what was published meanwhile comes first,
 *   then live publications, each once and in order (docs/PROTOCOL.md, WebRTC).
 */

import type { RealtimeClient } from "./client.js";
import { type HttpOptions, requestJson } from "./http.js";

interface IceServersReply {
  ice_servers: { urls: string[] | string; username?: string; credential?: string }[];
  expires_at: number | null;
}

/** STUN/TURN servers with a fresh TURN credential: fetch a new list for each connection. */
export async function iceServers(http: HttpOptions): Promise<RTCIceServer[]> {
  const reply = await requestJson<IceServersReply>(http, "GET", "/realtime/webrtc/ice-servers");
  return reply.ice_servers.map(({ urls, username, credential }) => ({
    urls,
    ...(username !== undefined ? { username } : {}),
    ...(credential !== undefined ? { credential } : {}),
  }));
}

function gathered(pc: RTCPeerConnection, timeoutMs = 5000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs); // send what we have: the server trickles none
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** Connects to the server peer. `setup(pc)` adds data channels and tracks before the offer
 * (the offer needs at least one). Resolves with the connection and the server's peer id. */
export async function connectToServer(
  http: HttpOptions,
  setup: (pc: RTCPeerConnection) => void,
  { room }: { room?: string } = {},
): Promise<{ pc: RTCPeerConnection; peerId: string }> {
  const pc = new RTCPeerConnection({ iceServers: await iceServers(http) });
  try {
    setup(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const body: Record<string, unknown> = { sdp: pc.localDescription!.sdp, type: "offer" };
    if (room) body.room = room;
    const answer = await requestJson<{ sdp: string; type: "answer"; peer_id: string }>(http, "POST", "/realtime/webrtc/offer", body);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    return { pc, peerId: answer.peer_id };
  } catch (error) {
    pc.close();
    throw error;
  }
}

/** A message of a bridged data channel: `subscribed`, `publication`, `gap`, `error`, ... */
export interface BridgeFrame {
  type: string;
  [field: string]: unknown;
}

function position(cursor: string): [string, number] | null {
  const match = /^([^:]+):(\d{1,15})$/.exec(cursor);
  return match ? [match[1]!, Number(match[2])] : null;
}

/** Where each bridged data channel stands, kept from what it delivers, and the data channel
 * `protocol` that resumes it on a new peer connection (`{"since": cursor}`, or `{}` at
 * first: the server then says where the channel stands with a `subscribed` message). */
export class BridgeCursors {
  /** channel -> its last cursor (`"<epoch>:<offset>"`) */
  readonly cursors = new Map<string, string>();

  protocol(channel: string): string {
    const since = this.cursors.get(channel);
    return JSON.stringify(since ? { since } : {});
  }

  /** A message of the bridged channel `channel` as a frame, its cursor kept; null for a
   * publication given already (the old connection may still deliver one) or a message that
   * is not a JSON object. */
  observe(channel: string, data: unknown): BridgeFrame | null {
    if (typeof data !== "string") return null;
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return null;
    }
    if (typeof frame !== "object" || frame === null || Array.isArray(frame)) return null;
    const { type, cursor, replayed } = frame as BridgeFrame;
    if (typeof cursor !== "string") return frame as BridgeFrame;
    if (type === "publication") {
      const last = position(this.cursors.get(channel) ?? "");
      const now = position(cursor);
      if (last && now && last[0] === now[0] && now[1] <= last[1]) return null;
      this.cursors.set(channel, cursor);
    } else if (type === "gap" || (type === "subscribed" && !replayed)) {
      // `subscribed` with publications to follow: they move the cursor, one by one
      this.cursors.set(channel, cursor);
    }
    return frame as BridgeFrame;
  }

  /** A data channel bridged to `channel`, resuming from its cursor; its frames go to
   * `onFrame` after `observe()`. */
  open(pc: RTCPeerConnection, channel: string, onFrame?: (frame: BridgeFrame) => void): RTCDataChannel {
    const dataChannel = pc.createDataChannel(channel, { protocol: this.protocol(channel) });
    dataChannel.addEventListener("message", (event: MessageEvent) => {
      const frame = this.observe(channel, event.data);
      if (frame) onFrame?.(frame);
    });
    return dataChannel;
  }
}

/** Data channels bridged to hub channels on the server peer (`POST /realtime/webrtc/offer`),
 * kept across network changes: `reconnect()` (call it when the connection fails, or when
 * the browser says the network changed) closes the peer connection and makes a new one
 * whose channels resume from their cursors. `onFrame(channel, frame)` gets each
 * publication once, in order; a `subscribed` frame with `recovered: false` says the history
 * no longer reached back (reload what you derive from the channel). */
export class ServerBridges {
  readonly cursors = new BridgeCursors();
  readonly channels = new Map<string, RTCDataChannel>();
  pc: RTCPeerConnection | null = null;
  peerId: string | null = null;
  #closes = 0;

  constructor(
    readonly http: HttpOptions,
    readonly names: string[],
    readonly onFrame: (channel: string, frame: BridgeFrame) => void,
    readonly options: {
      room?: string;
      /** Calls `reconnect()` when the peer connection fails (default false). */
      reconnectOnFailure?: boolean;
    } = {},
  ) {}

  async connect(): Promise<RTCPeerConnection> {
    const channels = new Map<string, RTCDataChannel>();
    const { pc, peerId } = await connectToServer(
      this.http,
      (pc) => {
        for (const name of this.names) channels.set(name, this.cursors.open(pc, name, (frame) => this.onFrame(name, frame)));
      },
      this.options.room ? { room: this.options.room } : {},
    );
    this.pc = pc;
    this.peerId = peerId;
    this.channels.clear();
    for (const [name, channel] of channels) this.channels.set(name, channel);
    if (this.options.reconnectOnFailure) {
      pc.addEventListener("connectionstatechange", () => {
        if (pc === this.pc && pc.connectionState === "failed") void this.#retry();
      });
    }
    return pc;
  }

  /** reconnect() until it works (the network may take a while to come back), with backoff
   * from 0.5 s to 30 s, until close(). */
  async #retry(): Promise<void> {
    const closedAt = this.#closes;
    for (let delay = 500; closedAt === this.#closes; delay = Math.min(delay * 2, 30_000)) {
      try {
        await this.reconnect();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** A new peer connection resuming every channel; the old one is closed first. */
  async reconnect(): Promise<RTCPeerConnection> {
    this.pc?.close();
    this.pc = null;
    return this.connect();
  }

  /** Publishes on `channel` through its data channel (JSON, or plain text as a string). */
  send(channel: string, data: unknown): void {
    const dataChannel = this.channels.get(channel);
    if (!dataChannel || dataChannel.readyState !== "open") throw new Error(`${channel} is not open`);
    dataChannel.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  close(): void {
    this.#closes += 1;
    this.pc?.close();
    this.pc = null;
    this.channels.clear();
  }
}

export interface Participant {
  peer_id: string;
  user_id: number;
}

/** A room joined over the client's WebSocket. `onOffer` decides how to answer a member's
 * call (add tracks/handlers to `pc`); without it, offers are answered as they come. */
export class Room {
  readonly peers = new Map<string, RTCPeerConnection>();
  participants: Participant[] = [];
  peerId: string | null = null;
  #off: (() => void) | null = null;

  constructor(
    readonly client: RealtimeClient,
    readonly roomId: string,
    readonly options: {
      iceServers?: RTCIceServer[];
      onOffer?: (pc: RTCPeerConnection, from: string) => void;
      /** A signal that could not be applied (a bad SDP or candidate from a member). */
      onError?: (error: unknown) => void;
    } = {},
  ) {}

  async join(): Promise<Participant[]> {
    const reply = await this.client.request<{ peer_id: string; participants: Participant[] }>({ type: "join", room: this.roomId });
    this.peerId = reply.peer_id;
    this.participants = reply.participants;
    this.#off = this.client.on("signal", (frame) => void this.#signal(frame).catch((error: unknown) => this.options.onError?.(error)));
    return this.participants;
  }

  async leave(): Promise<void> {
    this.#off?.();
    for (const pc of this.peers.values()) pc.close();
    this.peers.clear();
    await this.client.request({ type: "leave" });
  }

  /** Calls `to` (a member's peer id, or `"server"`); `setup(pc)` adds channels/tracks. */
  async call(to: string, setup: (pc: RTCPeerConnection) => void): Promise<RTCPeerConnection> {
    const pc = this.#peer(to);
    setup(pc);
    await pc.setLocalDescription(await pc.createOffer());
    if (to === "server") {
      await gathered(pc); // the server answers at once, with all its candidates
      const answer = await this.client.request<{ sdp: string }>({ type: "offer", to, sdp: pc.localDescription!.sdp });
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } else {
      this.client.signal({ type: "offer", to, sdp: pc.localDescription!.sdp });
    }
    return pc;
  }

  #peer(id: string): RTCPeerConnection {
    let pc = this.peers.get(id);
    if (pc) return pc;
    pc = new RTCPeerConnection({ iceServers: this.options.iceServers ?? [] });
    if (id !== "server") {
      pc.addEventListener("icecandidate", (event) => {
        if (this.client.connected) this.client.signal({ type: "candidate", to: id, candidate: event.candidate?.toJSON() ?? null });
      });
    }
    this.peers.set(id, pc);
    return pc;
  }

  async #signal(frame: Record<string, unknown>): Promise<void> {
    const from = String(frame.from ?? "");
    if (frame.type === "offer") {
      const pc = this.#peer(from);
      this.options.onOffer?.(pc, from);
      await pc.setRemoteDescription({ type: "offer", sdp: String(frame.sdp) });
      await pc.setLocalDescription(await pc.createAnswer());
      this.client.signal({ type: "answer", to: from, sdp: pc.localDescription!.sdp });
    } else if (frame.type === "answer") {
      await this.peers.get(from)?.setRemoteDescription({ type: "answer", sdp: String(frame.sdp) });
    } else if (frame.type === "candidate" && frame.candidate) {
      await this.peers.get(from)?.addIceCandidate(frame.candidate as RTCIceCandidateInit);
    } else if (frame.type === "peer-left") {
      const left = String(frame.peer_id);
      this.peers.get(left)?.close();
      this.peers.delete(left);
      this.participants = this.participants.filter((p) => p.peer_id !== left);
    } else if (frame.type === "peer-joined") {
      this.participants = [...this.participants, { peer_id: String(frame.peer_id), user_id: Number(frame.user_id) }];
    }
  }
}

