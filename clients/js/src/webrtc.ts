/**
 * WebRTC helpers for browsers (they need `RTCPeerConnection`):
 *
 * - `iceServers(http)`: `GET /realtime/webrtc/ice-servers`, ready for `new RTCPeerConnection`;
 * - `connectToServer(http, setup)`: a peer connection to the server's own peer through
 *   `POST /realtime/webrtc/offer` (WHIP-style, no socket needed). A data channel labelled
 *   `echo` echoes; one labelled with a hub channel (`public:lobby`) bridges to it;
 * - `Room`: join a room over the client's socket, call the server peer or another member,
 *   answer members' offers, with candidates trickled through signaling.
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

