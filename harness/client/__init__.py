"""Gevent WebSocket guest client: the only package that imports websocket-client."""
