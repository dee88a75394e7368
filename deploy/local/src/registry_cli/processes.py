"""Child processes with name-prefixed output, parent-death signals and ordered shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child if the supervisor dies, so nothing is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def group_members(group: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


class ToolMissing(RuntimeError):
    """A program the stack runs (Prometheus, Alertmanager, nginx) is not installed."""


def installed(names: list[str], package: str, setting: str, *, also: tuple[str, ...] = ()) -> str:
    """The first of ``names`` on the PATH (else of the paths ``also``), or the error naming its package."""
    for name in names:
        if found := shutil.which(name):
            return found
    for path in also:
        if Path(path).exists():
            return path
    raise ToolMissing(f"{names[0]!r} is not installed: `apt-get install {package}` (Debian) or set {setting}")


class PortInUse(RuntimeError):
    """A port the stack needs is taken."""


def check_port_free(host: str, port: int, what: str, setting: str) -> None:
    """Raise :class:`PortInUse` with a one-line fix when ``port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise PortInUse(
                f"port {port} ({what}) is already in use on {host}; set {setting}=<free port> to use another"
            ) from None


async def wait_for_port(host: str, port: int, *, timeout: float, process: Child | None = None) -> None:
    """Wait until something accepts TCP connections on ``port``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if process is not None and process.returncode is not None:
            raise RuntimeError(f"{process.name} exited with code {process.returncode} during start-up")
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f}s") from None
            await asyncio.sleep(0.05)


class Child:
    """One supervised process whose output lines are printed with its name in front."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        quiet: bool = False,
        log_path: Path | None = None,
    ) -> None:
        self.name, self.argv, self.env, self.quiet, self.log_path = name, list(argv), env, quiet, log_path
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def returncode(self) -> int | None:
        """Exit code, or ``None`` while running."""
        return self.process.returncode if self.process else None

    async def start(self) -> None:
        """Start the process with its output piped through the prefixer."""
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches only the supervisor, which stops us in order
        )
        self._pump = asyncio.create_task(self._prefix_output(), name=f"log-{self.name}")

    async def _prefix_output(self) -> None:
        assert self.process and self.process.stdout
        prefix = f"{self.name:<15}| "
        log_file = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = self.log_path.open("ab")  # appended across restarts, like a container's log
        try:
            async for raw in self.process.stdout:
                if log_file is not None:
                    log_file.write(raw)
                    log_file.flush()
                if not self.quiet:
                    sys.stdout.write(prefix + raw.decode("utf-8", "replace"))
                    sys.stdout.flush()
        finally:
            if log_file is not None:
                log_file.close()

    async def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self._pump:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._pump, 2)
