"""Fixtures: the real pentascope binary on an ephemeral port, the fixture corpus, Redis.

- ``PENTASCOPE_BIN``: the binary (default ``target/debug/pentascope`` in the
  repository root). Missing is a failure, not a skip.
- ``PENTASCOPE_FIXTURES``: the fixture corpus (default ``../shared/fixtures``
  from the repository root).
- ``PENTASCOPE_TEST_CELERY_REDIS``: Redis for the Celery tests (default
  ``redis://127.0.0.1:6379/7``; the database is flushed). Missing Redis skips
  those tests, except under ``CI=true`` where it is a failure.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from pentascope import Client

REPO_ROOT = Path(__file__).resolve().parents[3]
LISTENING = "pentascope listening on "
STARTUP_TIMEOUT = 60.0
# Settings a developer's shell may carry that would reconfigure the servers under test.
SCRUBBED_PREFIXES = ("PENTASCOPE_", "CELERY_", "AWS_")
SCRUBBED = {"DATABASE_URL", "VERCEL_POSTGRES_URL", "STORAGE_URL", "HOST", "PORT"}


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default


def fixtures_path() -> Path:
    """The fixture corpus (``$PENTASCOPE_FIXTURES``)."""
    return _path_from_env("PENTASCOPE_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures")


def load_expected(root: Path) -> dict[str, dict[str, Any]]:
    """expected.json of both sets, keyed by ``set/file``; empty if missing."""
    out: dict[str, dict[str, Any]] = {}
    for folder in ("tiff", "real"):
        path = root / folder / "expected.json"
        if path.is_file():
            for name, entry in json.loads(path.read_text())["files"].items():
                out[f"{folder}/{name}"] = entry
    return out


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SCRUBBED and not k.startswith(SCRUBBED_PREFIXES)
    }
    env.update({"NO_COLOR": "1", "RUST_LOG": "warn"})
    env.update(extra)
    return env


class Process:
    """A pentascope process (``serve`` or ``worker``) whose output goes to a log file."""

    def __init__(self, binary: Path, command: str, data_dir: Path, env: Mapping[str, str]) -> None:
        self.log_path = data_dir.parent / f"{data_dir.name}-{command}-{os.getpid()}-{id(self)}.log"
        self._log = self.log_path.open("w")
        args = [str(binary), command, "--data-dir", str(data_dir)]
        if command == "serve":
            args += ["--host", "127.0.0.1", "--port", "0"]
        self.proc = subprocess.Popen(
            args,
            env=_child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if command == "serve" else self._log,
            stderr=self._log,
            text=True,
        )

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-8000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Server(Process):
    """``pentascope serve`` on 127.0.0.1, port 0; ``url`` is where it listens."""

    def __init__(self, binary: Path, data_dir: Path, env: Mapping[str, str] = {}) -> None:
        super().__init__(binary, "serve", data_dir, env)
        assert self.proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, args=(self.proc.stdout, lines), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                self.stop()
                pytest.fail(f"pentascope serve printed no listening line:\n{self.logs()}")
            if line is None:
                self.stop()
                pytest.fail(f"pentascope serve exited before listening:\n{self.logs()}")
            if LISTENING in line:
                self.url = line.split(LISTENING, 1)[1].strip().rstrip("/")
                return

    def _drain(self, stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
            try:
                self._log.write(line)
            except ValueError:  # closed by stop()
                pass
        lines.put(None)

    def client(self, **kwargs: Any) -> Client:
        return Client(self.url, **kwargs)


@pytest.fixture(scope="session")
def pentascope_bin() -> Path:
    binary = _path_from_env("PENTASCOPE_BIN", REPO_ROOT / "target" / "debug" / "pentascope")
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(
            f"the pentascope binary is missing at {binary}: build it (cargo build -p pentascope) "
            "or set PENTASCOPE_BIN"
        )
    return binary


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    path = fixtures_path()
    if not (path / "tiff" / "expected.json").is_file():
        pytest.fail(f"the fixture corpus is missing at {path}: set PENTASCOPE_FIXTURES")
    return path


@pytest.fixture(scope="session")
def expected(fixtures_dir: Path) -> dict[str, dict[str, Any]]:
    return load_expected(fixtures_dir)


@pytest.fixture(scope="session")
def server(pentascope_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An embedded server (SQLite, local pixels, in-process jobs) for the session."""
    s = Server(pentascope_bin, tmp_path_factory.mktemp("serve") / "data")
    yield s
    s.stop()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def start_process(pentascope_bin: Path) -> Iterator[Any]:
    """Starts extra servers (``kind="serve"``) or workers, stopped after the test."""
    started: list[Process] = []

    def start(data_dir: Path, env: Mapping[str, str] = {}, kind: str = "serve") -> Process:
        p: Process = (
            Server(pentascope_bin, data_dir, env)
            if kind == "serve"
            else Process(pentascope_bin, kind, data_dir, env)
        )
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.stop()


def _required(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def celery_redis() -> str:
    """A flushed Redis database for the Celery tests."""
    url = os.environ.get("PENTASCOPE_TEST_CELERY_REDIS", "redis://127.0.0.1:6379/7")
    try:
        import celery  # noqa: F401
        import redis
    except ImportError:
        _required("celery and redis (pip install 'pentascope[celery]')")
    try:
        r = redis.Redis.from_url(url, socket_connect_timeout=2)
        r.ping()
        r.flushdb()
        r.close()
    except redis.RedisError as e:
        _required(f"Redis at {url} ({e})")
    return url
