"""One room order across nodes: the bus that carries room events, control and presence.

``local`` is one process, what rtserver has always been; ``redis`` spans several nodes with a
Redis stream per room (``--redis URL``).
"""
