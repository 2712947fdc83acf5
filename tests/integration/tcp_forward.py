#!/usr/bin/env python3
"""A TCP forwarder for many_hosts_test.cpp: tcp_forward.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT.

Accepts on LISTEN_HOST:LISTEN_PORT and copies each connection both ways to a new connection to
TARGET_HOST:TARGET_PORT, passing a half-close (EOF) on to the other side. A connection whose target
cannot be reached is closed. Prints "listening" on stdout once it accepts; exits on SIGTERM or
SIGINT, or when its parent process is gone.
"""
import os
import signal
import socket
import sys
import threading


def pump(src, dst, done):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)  # half-close: the other direction may still carry data
    except OSError:
        pass
    if done.acquire(blocking=False) is False:
        # The other direction has finished too: close both.
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


def serve(client, target):
    try:
        upstream = socket.create_connection(target, timeout=5)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = threading.Semaphore(1)
    threading.Thread(target=pump, args=(client, upstream, done), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, done), daemon=True).start()


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    listen = (sys.argv[1], int(sys.argv[2]))
    target = (sys.argv[3], int(sys.argv[4]))
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(listen)
    server.listen(128)
    server.settimeout(0.5)
    print("listening", flush=True)
    while True:
        if os.getppid() != parent:  # the parent died: we were reparented
            os._exit(0)
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        client.settimeout(None)
        serve(client, target)


if __name__ == "__main__":
    sys.exit(main())
