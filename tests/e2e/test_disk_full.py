"""sqlite:// on a full disk (issue 14.1): 503 on publish, recovery when space returns.

A real server on a small tmpfs. Mounting needs root: locally the test is
skipped with the reason when the mount fails; with CI=true it fails instead.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.support.server import ServerProcess

CHANNEL = "ops.disk"
MESSAGE = "x" * 3000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs, unmounted at teardown."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        why = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file, to delete when space should return."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            for _ in range(10_000):  # 640 MiB at most: the disk is far smaller
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            return filler
    raise AssertionError("the small disk never filled")


def publish(client: httpx.Client, url: str) -> httpx.Response:
    return client.post(f"{url}/api/channels/{CHANNEL}/events", json={"message": MESSAGE})


def history(client: httpx.Client, url: str) -> list[str]:
    response = client.get(f"{url}/api/channels/{CHANNEL}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["events"]]


@pytest.mark.slow
def test_a_full_disk_refuses_publishes_and_loses_nothing_acknowledged(
    small_disk: Path, tmp_path: Path
) -> None:
    config = {
        "broker": {"url": f"sqlite:///{small_disk}/pb.db"},
        "limits": {"publish_rate": 1_000_000, "publish_burst": 1_000_000},
    }
    server = ServerProcess(tmp_path, config).start()
    acknowledged: list[str] = []
    try:
        with httpx.Client(timeout=30) as client:
            acknowledged += [publish(client, server.url).json()["id"] for _ in range(5)]
            filler = fill(small_disk)
            refused = None
            for _ in range(2000):  # each is ~3 KB: the free pages run out long before
                response = publish(client, server.url)
                if response.status_code != 201:
                    refused = response
                    break
                acknowledged.append(response.json()["id"])
            assert refused is not None and refused.status_code == 503, refused
            assert "error" in refused.json()
            assert client.get(f"{server.url}/readyz").status_code == 503
            filler.unlink()
            after = publish(client, server.url)
            assert after.status_code == 201, after.text
            acknowledged.append(after.json()["id"])
            assert client.get(f"{server.url}/readyz").status_code == 200
            assert history(client, server.url) == acknowledged
        server.stop(signal.SIGKILL)
        server = ServerProcess(tmp_path, config, port=server.port).start()
        with httpx.Client(timeout=30) as client:
            assert history(client, server.url) == acknowledged
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()
