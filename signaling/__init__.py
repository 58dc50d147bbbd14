"""WebRTC: signaling over the realtime WebSocket, rooms, and the server's own aiortc peer.

config.py     ICE servers and host addresses from settings
protocol.py   the signaling message models (join, leave, offer, answer, candidate)
rooms.py      room membership in Redis (atomic capacity check, leases) and relaying
peer.py       one server-side aiortc peer: echo, recording, relay, data channels
peers.py      the peers of this process: limits, lifecycle, stats
bridge.py     a data channel bridged to a hub channel
metrics.py    the WebRTC families of GET /metrics (read at scrape time)
handlers.py   the signaling message handlers added to every WebSocket session
"""
