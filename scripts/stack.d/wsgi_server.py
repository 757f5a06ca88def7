"""Serve an OpenStack WSGI app (Neutron or Keystone) for the dev stack.

Neutron 29 and Keystone 30 ship only WSGI applications. This wraps one in the
standard library's threaded WSGI server on 127.0.0.1 and applies what the
single-process, SQLite-backed dev stack needs (see docs/dev-stack.md):

* one lock serialises API requests (and, for Neutron, the ML2/OVN OVSDB event
  handlers), because SQLite has a single writer;
* SQLite: WAL, a 60 s busy timeout, and "database is locked" mapped to
  DBDeadlock so Neutron's retry decorators retry it;
* the ML2/OVN hash-ring heartbeat that the IDL thread does inline runs on a
  side thread, so the IDL thread never waits on the SQLite lock (an API
  request holding the lock may be waiting for that very thread);
* SIGTERM runs the app's own handler (ML2/OVN leaves the hash ring) and exits.

usage: wsgi_server.py {neutron|keystone} PORT
"""
import logging
import os
import signal
import socketserver
import sys
import threading
import time
from wsgiref import simple_server

API_LOCK = threading.RLock()
LOG = logging.getLogger("kuryr-stack")


def patch_sqlite():
    import sqlalchemy
    from oslo_db.sqlalchemy import exc_filters
    from sqlalchemy import exc as sqla_exc
    from sqlalchemy.engine import Engine

    @sqlalchemy.event.listens_for(Engine, "connect")
    def _sqlite_pragmas(dbapi_con, _record):
        if type(dbapi_con).__module__.startswith("sqlite3"):
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA busy_timeout = 60000")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

    # oslo.db forces NullPool for SQLite files: a new connection (and its
    # PRAGMAs) per session. A small QueuePool is about 25% faster.
    if os.environ.get("KURYR_STACK_SQLITE_POOL", "queue") == "queue":
        from sqlalchemy import pool as sa_pool
        real_create_engine = sqlalchemy.create_engine

        def create_engine(url, *args, **kwargs):
            u = sqlalchemy.engine.make_url(url)
            if (u.get_backend_name() == "sqlite" and u.database
                    and u.database != ":memory:"
                    and kwargs.get("poolclass") is sa_pool.NullPool):
                kwargs["poolclass"] = sa_pool.QueuePool
                kwargs["pool_size"] = 4
                kwargs["max_overflow"] = 16
                kwargs.setdefault("connect_args", {})["check_same_thread"] = False
            return real_create_engine(url, *args, **kwargs)

        sqlalchemy.create_engine = create_engine

    # A deferred transaction that upgrades to a writer fails at once with
    # "database is locked" when another writer is active; retrying is right.
    exc_filters.filters(
        "sqlite", sqla_exc.OperationalError, r"^.*database is locked.*"
    )(exc_filters._deadlock_error)


def patch_neutron_ovn():
    """Heartbeat on a side thread; OVSDB event handlers take API_LOCK."""
    from ovsdbapp import event as ovsdb_event

    from neutron.db import ovn_hash_ring_db

    real_touch = ovn_hash_ring_db.touch_node
    pending = set()
    last_touch = {}
    cond = threading.Condition()
    min_interval = 5.0  # the ring only cares about 15 s / 120 s granularity

    def touch_worker():
        from neutron_lib import context as n_context
        while True:
            with cond:
                while not pending:
                    cond.wait()
                node_uuid = pending.pop()
            if time.monotonic() - last_touch.get(node_uuid, -1e9) < min_interval:
                continue
            try:
                # Under the API lock: a concurrent SQLite writer would make
                # the API request's own write fail ("database is locked").
                with API_LOCK:
                    real_touch(n_context.get_admin_context(), node_uuid)
                last_touch[node_uuid] = time.monotonic()
            except Exception:  # logged, the next event touches again
                LOG.exception("hash ring heartbeat for %s failed", node_uuid)

    threading.Thread(target=touch_worker, name="hash-ring-touch",
                     daemon=True).start()

    def touch_node_async(context, node_uuid):
        with cond:
            pending.add(node_uuid)
            cond.notify()

    ovn_hash_ring_db.touch_node = touch_node_async

    # Event handlers write to the DB: run them under the API lock. WaitEvents
    # only set a threading.Event that a (lock-holding) caller may wait on, so
    # they must not take it.
    orig_run_attr = "_kuryr_stack_wrapped"

    def wrap_event(ev):
        if getattr(ev, orig_run_attr, False) or isinstance(
                ev, ovsdb_event.WaitEvent):
            return
        inner = ev.run

        def run_locked(event, row, old):
            with API_LOCK:
                return inner(event, row, old)

        ev.run = run_locked
        setattr(ev, orig_run_attr, True)

    real_add = ovsdb_event.RowEventHandler._add

    def add_locked(self, ev):
        wrap_event(ev)
        return real_add(self, ev)

    ovsdb_event.RowEventHandler._add = add_locked


class ThreadingWSGIServer(socketserver.ThreadingMixIn,
                          simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class QuietHandler(simple_server.WSGIRequestHandler):
    def handle(self):
        self._t0 = time.monotonic()
        super().handle()

    def log_message(self, fmt, *args):
        took = time.monotonic() - getattr(self, "_t0", time.monotonic())
        sys.stderr.write("%s access %s %s %.3fs\n" % (
            time.strftime("%Y-%m-%d %H:%M:%S"), self.address_string(),
            fmt % args, took))


def serialised(app):
    def wrapper(environ, start_response):
        t0 = time.monotonic()
        with API_LOCK:
            waited = time.monotonic() - t0
            body = app(environ, start_response)
            # Drain the iterable inside the lock: the app may do DB work lazily.
            try:
                chunks = list(body)
            finally:
                close = getattr(body, "close", None)
                if close:
                    close()
        spent = time.monotonic() - t0
        if spent > 5:
            LOG.warning("slow request %s %s: %.2fs (%.2fs waiting for lock)",
                        environ.get("REQUEST_METHOD"),
                        environ.get("PATH_INFO"), spent, waited)
        return chunks
    return wrapper


def load_app(kind):
    if kind == "neutron":
        os.environ.setdefault("ASGI_WORKERS", "1")
        patch_sqlite()
        patch_neutron_ovn()
        from neutron.wsgi import api
        return api.application
    if kind == "keystone":
        patch_sqlite()
        from keystone.wsgi import api
        return api.application
    raise SystemExit("unknown app %r" % kind)


def main():
    kind, port = sys.argv[1], int(sys.argv[2])
    # oslo.config parses sys.argv: give it nothing of ours.
    sys.argv = [sys.argv[0]]
    logging.basicConfig(level=logging.INFO)
    app = load_app(kind)
    # DB retries sleep with back-off: make them visible in the log.
    for name in ("oslo_db.api", "neutron_lib.db.api"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    server = simple_server.make_server(
        "127.0.0.1", port, serialised(app),
        server_class=ThreadingWSGIServer, handler_class=QuietHandler)

    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        # ML2/OVN's handler only leaves the hash ring; run it, then exit.
        if callable(previous):
            try:
                previous(signum, frame)
            except SystemExit:
                pass
            except Exception:
                LOG.exception("SIGTERM handler of the app failed")
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    sys.stderr.write("kuryr-stack: %s listening on 127.0.0.1:%d pid %d\n"
                     % (kind, port, os.getpid()))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
