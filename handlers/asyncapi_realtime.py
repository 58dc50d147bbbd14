"""The realtime half of the AsyncAPI document: the WebSocket (`/realtime/ws`) and the event
stream (`/realtime/events`), their frames in both directions and the replies to each client
message. Client messages come from the app's own MessageTypes (what the session accepts,
WebRTC signaling included when enabled); server frames from server/hub/frames*.py."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from handlers.asyncapi_schemas import Components
from server.hub import frames, frames_files, frames_signaling, frames_sse
from server.hub.protocol import Message

WS, SSE = "websocket", "events"

# Frames the server sends on its own (not as a reply), WebSocket and event stream alike.
PUSHED: list[tuple[str, str, type[BaseModel]]] = [
    ("server.connected", "connected", frames.Connected),
    ("server.publication", "publication", frames.Publication),
    ("server.join", "join", frames.PresenceJoin),
    ("server.leave", "leave", frames.PresenceLeave),
    ("server.gap", "gap", frames.Gap),
    ("server.unsubscribed", "unsubscribed", frames.Unsubscribed),  # removed by the server
    ("server.message.direct", "message", frames.Direct),
    ("server.error", "error", frames.Error),
]
# (component key, type) of each client message's replies, besides `error`.
WS_REPLIES: dict[str, list[tuple[str, type[BaseModel]]]] = {
    "ping": [("server.pong", frames.Pong)],
    "subscribe": [("server.subscribed", frames.Subscribed)],
    "unsubscribe": [("server.unsubscribed", frames.Unsubscribed)],
    "publish": [("server.ack", frames.Ack)],
    "message": [("server.message.echo", frames.Echo), ("server.ack", frames.Ack)],
    "presence": [("server.presence", frames.PresenceReply)],
    "file.begin": [("server.file.ready", frames_files.FileReady)],
    "file.end": [("server.file.done", frames_files.FileDone)],
    "file.abort": [("server.file.aborted", frames_files.FileAborted)],
    "join": [("server.joined", frames_signaling.Joined)],
    "leave": [("server.left", frames_signaling.Left)],
    "offer": [("server.answer.server", frames_signaling.ServerAnswer)],
}
# What each client message asks for, where its model has no docstring of its own.
CLIENT_SUMMARY = {
    "ping": "Ask for a `pong` carrying `data` back.",
    "subscribe": "Subscribe to a channel; with `since` (a cursor), recover what was missed.",
    "unsubscribe": "Stop receiving a channel's publications.",
    "publish": "Publish `data` on a channel (stored in its history, sent to every subscriber).",
    "presence": "Ask who is subscribed to a channel now.",
    "file.end": "Finish an upload: the server checks its size and SHA-256, then stores it.",
    "file.abort": "Give an upload up; its bytes and quota are freed.",
    "join": "Join a WebRTC room (created over REST).",
    "leave": "Leave your WebRTC room.",
    "offer": 'An SDP offer for a member of your room, or for `"server"` (the server peer).',
    "answer": "An SDP answer for the member whose offer it answers.",
    "candidate": "An ICE candidate for a member (or the server peer); null ends them.",
}
SIGNALING_PUSHED: list[tuple[str, str, type[BaseModel]]] = [
    ("server.peer-joined", "peer-joined", frames_signaling.PeerJoined),
    ("server.peer-left", "peer-left", frames_signaling.PeerLeft),
    ("server.offer", "offer", frames_signaling.RelayedOffer),
    ("server.answer", "answer", frames_signaling.RelayedAnswer),
    ("server.candidate", "candidate", frames_signaling.RelayedCandidate),
]
SSE_ONLY: list[tuple[str, str, type[BaseModel]]] = [
    ("sse.subscribed", "subscribed", frames_sse.StreamSubscribed),
    ("sse.binary", "binary", frames_files.BinaryEvent),
    ("sse.recovery-failed", "recovery-failed", frames_sse.RecoveryFailed),
    ("sse.close", "close", frames_sse.CloseEvent),
]
CHUNK_DOC = (
    "A file chunk: `0x01 | upload_id (16 bytes, a UUID) | offset (uint64, big-endian) | "
    "bytes`, at most `chunk_size` bytes at the offset the server expects."
)
BINARY_DOC = (
    "A binary message: `0x02 | header length (uint16, big-endian) | header (JSON) | bytes`. "
    "From a client the header is `{channel?, mime, filename?, id?}`; from the server it is "
    "`x-binary-header` (see docs/PROTOCOL.md, Binary frames)."
)


def _type_of(model: type[BaseModel]) -> str:
    return str(model.model_fields["type"].annotation.__args__[0])  # type: ignore[union-attr]


def _messages(refs: dict[str, dict[str, str]], channel: str) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{channel}/messages/{key}"} for key in refs]


def websocket(
    components: Components,
    client_types: dict[str, type[Message]],
    server_ref: dict[str, str],
    path: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The WebSocket channel and its operations: one `receive` per client message type
    (with its replies), and one `send` for what the server pushes on its own."""
    messages: dict[str, dict[str, str]] = {}
    operations: dict[str, Any] = {}
    error = components.message("server.error", "error", frames.Error)
    for type_, model in sorted(client_types.items()):
        key = f"client.{type_}"
        own_doc = model.__dict__.get("__doc__")
        summary = None if own_doc else CLIENT_SUMMARY.get(type_)
        messages[key] = components.message(
            key, type_, model, mode="validation", description=summary
        )
        replies = {k: components.message(k, _type_of(m), m) for k, m in WS_REPLIES.get(type_, [])}
        replies["server.error"] = error
        messages.update(replies)
        operations[key] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{WS}"},
            "title": f"Client sends `{type_}`",
            "messages": [{"$ref": f"#/channels/{WS}/messages/{key}"}],
            "reply": {"channel": {"$ref": f"#/channels/{WS}"}, "messages": _messages(replies, WS)},
        }
    for key, doc in (("client.binary.chunk", CHUNK_DOC), ("client.binary.message", BINARY_DOC)):
        messages[key] = components.message(key, key.split(".", 1)[1], None, description=doc)
        operations[key] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{WS}"},
            "title": "Client sends a binary frame",
            "messages": [{"$ref": f"#/channels/{WS}/messages/{key}"}],
        }
    signaling = "join" in client_types
    pushed = {k: components.message(k, n, m) for k, n, m in PUSHED}
    pushed["server.file.ack"] = components.message(
        "server.file.ack", "file.ack", frames_files.FileAck
    )
    pushed["server.binary.message"] = components.message(
        "server.binary.message",
        "binary.message",
        None,
        description=BINARY_DOC,
        fields={"x-binary-header": components.schema(frames_files.BinaryHeader)},
    )
    if signaling:
        pushed.update({k: components.message(k, n, m) for k, n, m in SIGNALING_PUSHED})
    messages.update(pushed)
    operations["server.push"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{WS}"},
        "title": "Frames the server sends on its own",
        "messages": _messages(pushed, WS),
    }
    channel = {
        "address": path,
        "title": "WebSocket",
        "description": (
            "Text frames are JSON objects with a `type`; a client may add an `id` to any "
            "message, which its reply carries (errors carry it as `ref`). Binary frames: "
            "file chunks and binary messages. Close codes: docs/PROTOCOL.md."
            + (" `/realtime/webrtc/signaling` is the same endpoint." if signaling else "")
        ),
        "servers": [server_ref],
        "messages": messages,
        "bindings": {
            "ws": {
                "method": "GET",
                "query": {
                    "type": "object",
                    "properties": {
                        "ticket": {
                            "type": "string",
                            "description": "A single-use ticket from POST /auth/ws-ticket.",
                        }
                    },
                },
                "bindingVersion": "0.1.0",
            }
        },
    }
    return channel, operations


SSE_QUERY = {
    "type": "object",
    "required": ["channels"],
    "properties": {
        "channels": {"type": "string", "description": "Comma-separated channel names."},
        "since": {
            "type": "string",
            "description": "A position to replay from (as Last-Event-ID): a cursor, or "
            "`a=<cursor>,b=<cursor>` with several channels.",
        },
        "ticket": {"type": "string", "description": "A single-use ticket (browsers)."},
        "token": {
            "type": "string",
            "description": "A subscription token (a JWT naming one of the channels; repeat "
            "the parameter for several). Short-lived tokens only; the `X-Subscription-Token` "
            "header (comma-separated) keeps them out of URLs.",
        },
    },
}


def event_stream(
    components: Components, server_ref: dict[str, str], path: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event stream: each message's `name` is its SSE `event:`, its payload the JSON of
    the event's `data:`."""
    events = {k: components.message(k, n, m) for k, n, m in PUSHED if n != "error"}
    events["server.error"] = components.message("server.error", "error", frames.Error)
    events.update({k: components.message(k, n, m) for k, n, m in SSE_ONLY})
    channel = {
        "address": path,
        "title": "Server-Sent Events",
        "description": (
            "`text/event-stream`, EventSource-compatible. A message's name is the event "
            "name; its payload is the event's data. A publication's event id is its cursor "
            "(several channels: `a=<cursor>,b=<cursor>`); reconnecting with Last-Event-ID "
            "or `?since=` replays what was missed. Keep-alive comments every "
            "SSE_PING_INTERVAL seconds. `unsubscribed` (with `code` and `reason`): the server "
            "ended one channel's subscription (removed from a private channel's members); "
            "the stream ends when no channel is left."
        ),
        "servers": [server_ref],
        "messages": events,
        "x-query": SSE_QUERY,
    }
    operation = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{SSE}"},
        "title": "Events the server streams",
        "messages": _messages(events, SSE),
    }
    return channel, {"sse.events": operation}
