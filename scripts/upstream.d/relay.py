#!/usr/bin/env python3
"""A byte relay for scripts/upstream: accepts on LISTEN, connects each client
to TARGET and copies both ways until either side closes.

    relay.py LISTEN TARGET READY_FILE

LISTEN and TARGET are tcp:HOST:PORT or unix:PATH. Once listening it writes
"ready" to READY_FILE. A unix LISTEN path is created mode 0600 and removed on
exit. Stops on SIGTERM/SIGINT. Standard library only.

Used for Docker's API on tcp:127.0.0.1:2375 (upstream's fullstack suite
hard-codes tcp://0.0.0.0:2375) and, in the upstream reference mode, for the
plugin socket /run/docker/plugins/kuryr.sock in front of kuryr-server's TCP port.
"""
import asyncio
import os
import signal
import sys


def parse(spec):
    kind, _, rest = spec.partition(":")
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        return ("tcp", host, int(port))
    if kind == "unix" and rest:
        return ("unix", rest)
    sys.exit(f"relay: bad address {spec!r} (tcp:HOST:PORT or unix:PATH)")


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Half-close so the other direction can finish (HTTP hijack, streams).
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass


async def main(listen, target, ready_file):
    async def handle(c_reader, c_writer):
        try:
            if target[0] == "tcp":
                t_reader, t_writer = await asyncio.open_connection(target[1], target[2])
            else:
                t_reader, t_writer = await asyncio.open_unix_connection(target[1])
        except OSError as e:
            print(f"relay: cannot reach the target: {e}", file=sys.stderr, flush=True)
            c_writer.close()
            return
        await asyncio.gather(pipe(c_reader, t_writer), pipe(t_reader, c_writer))
        for w in (c_writer, t_writer):
            w.close()

    if listen[0] == "tcp":
        server = await asyncio.start_server(handle, listen[1], listen[2], reuse_address=True)
    else:
        old = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(handle, listen[1])
        finally:
            os.umask(old)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with open(ready_file, "w") as f:
        f.write("ready\n")
    async with server:
        await stop.wait()
    if listen[0] == "unix":
        try:
            os.unlink(listen[1])
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: relay.py LISTEN TARGET READY_FILE")
    asyncio.run(main(parse(sys.argv[1]), parse(sys.argv[2]), sys.argv[3]))
