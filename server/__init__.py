"""The realtime server: process wiring and the services every surface shares."""

__version__ = "0.1.0"
