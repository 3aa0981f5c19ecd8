"""A TCP relay for local fault and latency tests: each `LISTEN=TARGET` pair accepts on LISTEN
and copies bytes both ways to TARGET, each chunk held back `--delay` seconds (in order), the way
a long link between two data centers would hold it. TLS passes through untouched.

With `--netns NAME` the listening sockets are made first, in the namespace the relay starts in,
and the connections to the targets afterwards, inside network namespace NAME (`setns(2)`): a
test outside the namespaces reaches servers that only listen inside them, without giving the
host any address of theirs. `--netns /proc/PID/ns/net` goes the other way: a relay started
inside a namespace (`ip netns exec`) listens there and reaches the host's loopback services.

    python -m cluster.dev.relay [--delay 0.05] [--netns NAME] 127.0.0.1:7001=169.254.77.1:2281 ...

The relay accepts a connection before it has reached the target; if the target cannot be
reached within `--connect-timeout` it drops the accepted one.

`--listen-netns NAME` is the other way round: the listening sockets are made inside NAME, the
connections from the namespace the relay starts in (a site reaches a service on the host's
loopback only through the hub, so cutting the site's link cuts that service off too).

Stops on SIGTERM. It keeps no state: a test stops it by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import queue
import signal
import socket
import threading
import time
from types import FrameType

from cluster.names import check_address

CLONE_NEWNET = 0x40000000
CHUNK = 65536


def _setns(fd: int, name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"setns into {name} failed")


def enter_netns(name: str) -> None:
    """Move this thread (and the threads it starts from now on) into namespace `name` (a name
    from `ip netns`, or a path such as /proc/PID/ns/net: back out to the host's namespace)."""
    fd = os.open(name if name.startswith("/") else f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(fd, name)
    finally:
        os.close(fd)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()


def _copy(src: socket.socket, dst: socket.socket, delay: float) -> None:
    """Copy until EOF or an error, each chunk sent `delay` seconds after it arrived."""
    held: queue.Queue[tuple[float, bytes]] = queue.Queue()

    def send() -> None:
        try:
            while True:
                due, chunk = held.get()
                if not chunk:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                dst.sendall(chunk)
        except OSError:
            _close(src, dst)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        while chunk := src.recv(CHUNK):
            held.put((time.monotonic() + delay, chunk))
    except OSError:
        pass
    held.put((time.monotonic() + delay, b""))


def _relay(
    client: socket.socket, target: tuple[str, int], delay: float, connect_timeout: float
) -> None:
    try:
        upstream = socket.create_connection(target, timeout=connect_timeout)
    except OSError:
        _close(client)
        return
    upstream.settimeout(None)
    for s in (client, upstream):  # small writes go at once, as on the wire being imitated
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=_copy, args=(a, b, delay), daemon=True).start()


def _serve(
    listener: socket.socket, target: tuple[str, int], delay: float, connect_timeout: float
) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        relay = (client, target, delay, connect_timeout)
        threading.Thread(target=_relay, args=relay, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", metavar="LISTEN=TARGET")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds each way")
    ap.add_argument("--netns", help="reach the targets inside this network namespace")
    ap.add_argument("--listen-netns", help="listen inside this network namespace")
    ap.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        help="seconds to reach a target before dropping the accepted connection (longer than "
        "the client's own: a connection to a target cut off then waits on the client's timeout, "
        "as it would without the relay)",
    )
    args = ap.parse_args(argv)
    home = None
    if args.listen_netns:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)  # the way back
        enter_netns(args.listen_netns)
    routes = []
    for pair in args.pairs:
        listen, _, target = pair.partition("=")
        listener = socket.create_server(check_address(listen), reuse_port=False)
        routes.append((listener, check_address(target)))
    if home is not None:
        _setns(home, "the relay's own namespace")
        os.close(home)
    if args.netns:
        enter_netns(args.netns)  # before any thread: they all start inside it
    stop = threading.Event()

    def terminate(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, terminate)
    for listener, target in routes:
        serve = (listener, target, args.delay, args.connect_timeout)
        threading.Thread(target=_serve, args=serve, daemon=True).start()
    print(f"relaying {len(routes)} routes", flush=True)
    stop.wait()


if __name__ == "__main__":
    main()
