// Generated from clients/js/src by clients/js/scripts/copy-static.mjs: do not edit.
/** @realtime-server/client: the realtime server's protocol for browsers and Node >= 20. */
export { ticketFrom } from "./auth.js";
export { decodeMessage, encodeMessage } from "./binary.js";
export { Channel } from "./channel.js";
export { RealtimeClient } from "./client.js";
export { Emitter } from "./emitter.js";
export { ConnectionClosed, ConnectionLost, RealtimeError, RecoveryFailed } from "./errors.js";
export { sha256Hex } from "./files.js";
export { requestJson } from "./http.js";
export { PrivateChannels } from "./private.js";
export { RealtimeEvents } from "./sse.js";
export { BridgeCursors, Room, ServerBridges, connectToServer, iceServers } from "./webrtc.js";
