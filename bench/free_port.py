#!/usr/bin/env python3
"""Prints a free port of 127.0.0.1 below the kernel's ephemeral range (32768-60999 by default).

A port that bind(0) handed out and closed goes back to that range, where another process's
connect() or bind(0) can take it before the server the benchmark starts binds it."""
import random
import socket
import sys

FIRST, COUNT = 20000, 12000
start = random.randrange(COUNT)
for i in range(COUNT):
    port = FIRST + (start + i) % COUNT
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    sys.exit(0)
sys.exit("no free port in 20000-31999")
