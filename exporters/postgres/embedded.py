"""The embedded default: a PostgreSQL server of otel-llm's own when no DSN is configured.

``OTEL_LLM_DSN`` names the user's database. Without it, otel-llm starts PostgreSQL from
the ``pgserver`` package (which ships the server binaries in its wheel) with its data in
a per-user directory — ``$OTEL_LLM_DATA_DIR/pgdata``, by default
``$XDG_DATA_HOME/otel-llm/pgdata`` (``~/.local/share/otel-llm/pgdata``; the platform's
application-data folder on macOS and Windows). The server listens on a Unix socket
only, is reused by every later run and process, and keeps running after the process
that started it exits, so that ``otel-llm db url`` prints a DSN that works;
``otel-llm db stop`` stops it.

PostgreSQL refuses to run as root. When started by root, pgserver runs the server as an
unprivileged system user ``pgserver`` (creating it with ``useradd`` if needed) and makes
the data directory's parent folders traversable by that user (``o+rx``). Where that is
not acceptable, or ``useradd`` is missing, set ``OTEL_LLM_DSN`` to a PostgreSQL of your
own.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from psycopg.conninfo import conninfo_to_dict, make_conninfo

logger = logging.getLogger("otel_llm.postgres")

#: Environment variable with the user's DSN; when set, nothing is embedded.
ENV_DSN = "OTEL_LLM_DSN"
#: Environment variable overriding otel-llm's per-user data directory.
ENV_DATA_DIR = "OTEL_LLM_DATA_DIR"

_started: dict[Path, "EmbeddedServer"] = {}
_lock = threading.Lock()
_root_warned = False


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running embedded server."""

    pgdata: Path
    dsn: str


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """otel-llm's per-user data directory (``OTEL_LLM_DATA_DIR`` or the platform default)."""
    env = os.environ if env is None else env
    configured = env.get(ENV_DATA_DIR)
    if configured:
        return Path(configured).expanduser()
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "otel-llm"


def pgdata_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded server keeps its data."""
    return data_dir(env) / "pgdata"


def resolve_dsn(env: Mapping[str, str] | None = None) -> str:
    """``OTEL_LLM_DSN`` when set; otherwise the embedded server's DSN (starting it if needed)."""
    env = os.environ if env is None else env
    dsn = env.get(ENV_DSN)
    if dsn:
        return dsn
    return start_embedded(pgdata_dir(env)).dsn


def start_embedded(pgdata: str | os.PathLike[str] | None = None, *, keep_running: bool = True) -> EmbeddedServer:
    """Start the embedded server for ``pgdata`` (or reuse the running one) and return it.

    ``keep_running=False`` stops the server when the last process using it exits (what
    tests want); the default leaves it running for later runs and ``otel-llm db url``.
    Raises :class:`EmbeddedServerError` with advice when it cannot start.
    """
    global _root_warned
    path = Path(pgdata if pgdata is not None else pgdata_dir()).expanduser().resolve()
    with _lock:
        known = _started.get(path)
        if known is not None:
            return known
        try:
            pgserver = _import_pgserver()
        except ImportError as exc:
            raise EmbeddedServerError(
                "no OTEL_LLM_DSN is set and the 'pgserver' package is not installed; "
                "install it or set OTEL_LLM_DSN to your PostgreSQL") from exc
        _quiet_pgserver_logs()
        fresh = not (path / "PG_VERSION").exists()
        if _running_as_root() and not _root_warned:
            _root_warned = True
            logger.warning("otel-llm: running as root: the embedded PostgreSQL runs as the system user "
                           "'pgserver' (created if missing), and the folders above %s are made "
                           "traversable for it; set OTEL_LLM_DSN to use your own PostgreSQL instead", path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(path, cleanup_mode=None if keep_running else "stop")
            # pgserver keeps one handle per data directory and process; if this process
            # stopped the server earlier, the handle is stale: start the server again.
            info = pgserver.utils.PostmasterInfo.read_from_pgdata(path)
            if info is None or not info.is_running():
                server.ensure_postgres_running()
            dsn = _normalise(server.get_uri())
        except Exception as exc:  # noqa: BLE001 - any failure here gets the same advice
            raise EmbeddedServerError(_advice(path, exc)) from exc
        embedded = EmbeddedServer(pgdata=path, dsn=dsn)
        _started[path] = embedded
    # Said once per process, at WARNING so that it shows with default logging: the user
    # should know where their observations are going.
    logger.warning("otel-llm: using the embedded PostgreSQL in %s%s (%s); set OTEL_LLM_DSN to use "
                   "your own", path, " (created now)" if fresh else "", dsn)
    return embedded


def stop_embedded(pgdata: str | os.PathLike[str] | None = None) -> bool:
    """Stop the embedded server for ``pgdata`` if it is running; True if it was."""
    path = Path(pgdata if pgdata is not None else pgdata_dir()).expanduser().resolve()
    pid_file = path / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pgserver = _import_pgserver()
    except ImportError:
        return False
    info = pgserver.utils.PostmasterInfo.read_from_pgdata(path)
    if info is None or not info.is_running():
        return False
    user = "pgserver" if _running_as_root() else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=user)
    with _lock:
        _started.pop(path, None)

    logger.info("otel-llm: stopped the embedded PostgreSQL in %s", path)
    return True


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (for logs and messages)."""
    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - not parseable: show nothing of it
        return "<unparseable DSN>"
    if params.get("password"):
        params["password"] = "***"
    return make_conninfo("", **params)


def _normalise(uri: str) -> str:
    # pgserver writes an empty password ("postgres:@"); drop it so that the DSN is clean.
    return uri.replace("postgres:@", "postgres@", 1)


def _import_pgserver():  # noqa: ANN202 - the module
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, cron); harmless here.
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _quiet_pgserver_logs() -> None:
    # pgserver logs every command it runs at INFO; otel-llm reports what matters itself.
    pg_logger = logging.getLogger("pgserver")
    if pg_logger.level == logging.NOTSET:
        pg_logger.setLevel(logging.WARNING)


def _advice(path: Path, exc: BaseException) -> str:
    detail = f"{type(exc).__name__}: {exc}"
    log = path / "log"
    hint = f" (server log: {log})" if log.exists() else ""
    root = (" Running as root, it needs to create and use the system user 'pgserver' (useradd)."
            if _running_as_root() else "")
    return (f"the embedded PostgreSQL in {path} could not start: {detail}{hint}.{root} "
            "Set OTEL_LLM_DSN to a PostgreSQL of your own to skip the embedded server.")
