"""The realtime hub: channels with history, presence and fan-out across server nodes.

    channels.py    channel names, namespaces and who may subscribe or publish (pure)
    protocol.py    the wire format: client message models, errors, close codes, WS frames
    history.py     Redis streams history + the atomic publish script (offset, epoch, cursor)
    bus.py         the node's Redis pub/sub connection: channel fan-out and control events
    presence.py    channel members in Redis with leases that expire with their node
    connection.py  one client (WebSocket or SSE): bounded send queue and its writer
    hub.py         Hub: local connections, subscriptions, publish, direct messages, stats

Docs: docs/PROTOCOL.md describes every message, error code and close code.
"""
