"""The local Guest API simulator (asyncio + websockets), run in its own process(es)."""
