"""The Guest API protocol core: pure, no I/O (design.md, style.md "Sans-I/O core").

Nothing here imports sockets, gevent, websocket-client, websockets or locust; both the load
client and the simulator build on it.
"""
