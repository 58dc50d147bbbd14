/** @realtime-server/client: the realtime server's protocol for browsers and Node >= 20. */

export { type Auth, type Credential, ticketFrom } from "./auth.js";
export { type BinaryHeader, type BinaryMessage, decodeMessage, encodeMessage } from "./binary.js";
export { Channel, type ChannelEvents, type Member, type Publication, type Sender } from "./channel.js";
export { type Ack, type ClientEvents, RealtimeClient, type SubscribeOptions, type TokenSource } from "./client.js";
export { Emitter, type Listener } from "./emitter.js";
export { ConnectionClosed, ConnectionLost, RealtimeError, RecoveryFailed, type Ref } from "./errors.js";
export { type FileDone, type UploadOptions, type UploadProgress, sha256Hex } from "./files.js";
export { type HttpOptions, requestJson } from "./http.js";
export { type PrivateChannel, PrivateChannels, type PrivateMember, type PrivateMembers } from "./private.js";
export { type EventsEvents, type EventsOptions, RealtimeEvents } from "./sse.js";
export { type Hello, type SocketOptions, type WebSocketConstructor } from "./socket.js";
export { BridgeCursors, type BridgeFrame, type Participant, Room, ServerBridges, connectToServer, iceServers } from "./webrtc.js";
