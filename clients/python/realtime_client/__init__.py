"""Python client SDK for the realtime server: WebSocket (`WSClient`) and Server-Sent Events
(`create_sse_client`). It speaks only the wire protocol and needs nothing but aiohttp.

    async with WSClient("ws://localhost:8000/realtime/ws", token=access_token) as client:
        await client.subscribe("public:lobby")
        await client.publish("public:lobby", {"text": "hi"})
        async for message in client.messages():
            print(message)
"""

from realtime_client.binary import BinaryMessage
from realtime_client.errors import ConnectionClosed, ConnectionLost, RealtimeError, RecoveryFailed
from realtime_client.notifications import Notification
from realtime_client.private_channels import PrivateChannels
from realtime_client.sse import SSEClient, create_sse_client
from realtime_client.sse_parser import SSEEvent
from realtime_client.ws import WSClient

__all__ = [
    "BinaryMessage",
    "ConnectionClosed",
    "ConnectionLost",
    "Notification",
    "PrivateChannels",
    "RealtimeError",
    "RecoveryFailed",
    "SSEClient",
    "SSEEvent",
    "WSClient",
    "create_sse_client",
]

__version__ = "0.1.0"
