"""The cards the image tests boot, built in the background from the session's first test.

Building is most of what the image tests cost: the amd64 card natively, a second one
from the same inputs (test_reproducible), and the Pi's through qemu-user (about 20
minutes, most of it one core running the chroot's maintainer scripts and mkinitramfs).
The builds run one after another in a thread, each at the lowest CPU and I/O priority,
so they take the core the rest of the suite leaves idle rather than time from it; a test
that needs a card waits for it. The Pi's tests run last (tests/conftest.py), by when
their card is usually there."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .vm import REPO, Built, existing_image

# what the selected tests need, by fixture name (tests/image/conftest.py): the build's arch
WANTS = {"built": "amd64", "built_again": "amd64", "built_arm64": "arm64"}


def arm64_left_out() -> str | None:
    """Why this run leaves the Pi's image out, or None when it builds and checks it."""
    if os.environ.get("UPAZILA_IMAGE_ARM64") == "0":
        return "UPAZILA_IMAGE_ARM64=0: the Pi's image (about 20 minutes to build) left out"
    return None


@dataclass
class ImageBuild:
    """One run of ``image/build.sh --no-compress``, as national runs it."""

    name: str
    arch: str
    out: Path
    admin_key: Path
    returncode: int | None = None
    started: float = 0.0
    finished: float = 0.0
    proc: subprocess.Popen[bytes] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def log(self) -> Path:
        return self.out.parent / f"{self.out.name}.build.log"

    def run(self, low_priority: bool) -> None:
        prio = ["nice", "-n", "19", "ionice", "-c", "3"] if low_priority else []
        env = {**os.environ, "ADMIN_SSH_PUBKEY": str(self.admin_key.with_suffix(".pub"))}
        self.started = time.monotonic()
        try:
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [*prio, str(REPO / "image" / "build.sh"), "--arch", self.arch,
                     "--out", str(self.out), "--no-compress"],
                    env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)  # its own group: stop() ends mmdebstrap too
                self.returncode = self.proc.wait()
        finally:
            self.finished = time.monotonic()
            self.done.set()

    def result(self, timeout: float) -> Built:
        if not self.done.wait(timeout):
            raise AssertionError(f"{self.name}: image/build.sh --arch {self.arch} still "
                                 f"running after {timeout:.0f} s more:\n{self._tail()}")
        assert self.returncode == 0, (f"{self.name}: image/build.sh --arch {self.arch} "
                                      f"exited {self.returncode}:\n{self._tail()}")
        return existing_image(self.out, self.arch, self.admin_key,
                              self.finished - self.started)

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except OSError as e:
            return f"(no build log: {e})"


class BuildQueue:
    """The session's builds, one after another, in the order given."""

    def __init__(self, builds: list[ImageBuild], *, low_priority: bool = True) -> None:
        self.builds = {b.name: b for b in builds}
        self._low = low_priority
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="image-builds", daemon=True)
        self.t0 = time.monotonic()

    def start(self) -> BuildQueue:
        self._thread.start()
        return self

    def _run(self) -> None:
        for b in self.builds.values():
            if self._stopping:
                b.done.set()
                continue
            b.run(self._low)

    def get(self, name: str, timeout: float = 3600) -> tuple[Built, float]:
        """The build, once done, and how long the caller waited for it (s)."""
        t = time.monotonic()
        built = self.builds[name].result(timeout)
        return built, time.monotonic() - t

    def stop(self) -> None:
        """Session end: a build nobody waited for (its tests failed early or were
        interrupted) is ended with its process group; build.sh's trap unmounts its chroot."""
        self._stopping = True
        for b in self.builds.values():
            if b.proc is not None and b.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(b.proc.pid, signal.SIGTERM)
                try:
                    b.proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(b.proc.pid, signal.SIGKILL)
        self._thread.join(timeout=130)
