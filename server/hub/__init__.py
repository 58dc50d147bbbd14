"""The realtime hub: channels with history, presence and fan-out across server nodes.

The client protocol:
    protocol.py          client frames: Message, MessageTypes, parse, error frames, `Close`,
                         `now_ms()` (the unit of every timestamp)
    messages.py          the hub's own client message models
    binary.py            binary frames (file chunks, binary messages)
    delivery.py          one outgoing message, encoded once, framed once per transport
    notifications.py     the one shape of a notification event
Redis (shared by every node):
    wire.py              the bus wire format: the publish script (Lua) and its parsers
    position.py          Position and cursors (`<epoch>:<offset>`)
    history.py           channel history: positions, publishing, recovery from a cursor
    publisher.py         ChannelPublisher: publish from anywhere (hub, worker)
    bus.py               the node's pub/sub connection
    shards.py            the bus's sharded pub/sub on a Redis Cluster (a link per master)
    presence.py          channel members, with leases that expire with their node
    channels.py          channel names, namespaces, who may subscribe or publish (pure)
    private.py           private channels' members: PostgreSQL read through a Redis cache;
                         removals announced to every node
    access.py            who may subscribe, publish, see presence: rules, members, tokens
One node:
    connection.py        one client: subscriptions, bounded send queue, closing; the
                         SessionConnection a Session drives also replays subscriptions
    socket_connection.py a client whose socket is ours: one write per flush, its ring's marks
    ws_connection.py     a client over a WebSocket
    sse_connection.py    a client over an event stream
    heartbeat.py         rings that ping silent WebSockets and keep event streams alive
    subscription.py      a client's place in a channel; what subscribing hands back
    flusher.py           one flush per event-loop turn, coalescing large fan-outs
    fanout.py            subscribers by channel; delivery of the bus's messages to them;
                         catching them up after the bus resubscribed
    catchup.py           what a subscriber missed while the bus was down, or its `gap`
    subscriptions.py     subscribe (checks, recovery, presence, join/leave), unsubscribe
    registry.py          connections by id and user: shutdown, revocations, direct messages
    stats.py, upkeep.py  node statistics; the background upkeep
    metrics.py           the realtime families of GET /metrics (read at scrape time)
    hub.py               Hub: the node's realtime core, assembled from the above
A client's socket, taken from aiohttp once its response's head is sent:
    handover.py          the aiohttp internals this needs: the WebSocket handshake, the hand-over
    socket_protocol.py   what both sockets share: the session's end after the client's
                         messages, a close that waits a moment for the client
    ws_protocol.py       a WebSocket: frames in through aiohttp's C reader, in order; pings;
                         the closing handshake
    sse_protocol.py      an event stream: its first subscriptions, the body's end
One client's session (the same object for WebSocket and event stream):
    session.py           Session: start, subscribe (replay, recovery, then live), reply,
                         close; a WebSocket's frames in, errors out; message_types()
    handler.py           a message handler, `async def on_x(session, message)`, and what it
                         may use of the session
    channel_messages.py  handlers: ping, subscribe, unsubscribe, presence
    publish_messages.py  handlers: publish, message, binary messages
    file_messages.py     handlers: file.begin, file chunks, file.end, file.abort
    publishing.py        a WebSocket client's publish rate and queue to Redis (made on use)
    transfers.py         a WebSocket client's uploads in progress (made on use)
    ratelimit.py         token buckets

Docs: docs/PROTOCOL.md describes every message, error code and close code.
"""
