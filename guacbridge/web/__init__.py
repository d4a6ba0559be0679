"""The HTTP side: REST API, console page and WebSocket tunnel, on Tornado."""
