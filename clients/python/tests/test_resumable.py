"""Resumable uploads with tuspy against the real server: a file over the
threshold goes to ``/uploads`` in chunks, survives a connection cut in the
middle of a chunk (tuspy asks the server for its offset and goes on), and
ends as the image tifffile reads, with its catalogue fields; a file the
server refuses raises the server's reason."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from pentascope import Client, UnsupportedMediaType


class CuttingProxy:
    """A TCP proxy to ``target`` that resets its ``cut``-th connection after
    forwarding ``after`` bytes of the request (tuspy opens one per request)."""

    def __init__(self, target: str, cut: int, after: int) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.cut, self.after = cut, after
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.after if self.connections == self.cut else None
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: limit - sent])
                    # a reset, as a dropped Wi-Fi leaves it
                    for s in (src, dst):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def stack(tmp_path: Path) -> tuple[Path, np.ndarray[Any, Any]]:
    data = np.random.default_rng(26).integers(0, 65535, (3, 8, 2, 192, 160), dtype=np.uint16)
    path = tmp_path / "resumable.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX"})
    return path, data


def test_large_files_go_through_tus_and_resume_after_a_cut(
    server: Any, stack: tuple[Path, np.ndarray[Any, Any]]
) -> None:
    path, data = stack
    # the 2nd connection is the first PATCH after the creation's POST
    proxy = CuttingProxy(server.url.removeprefix("http://"), cut=3, after=300_000)
    try:
        client = Client(
            proxy.url,
            resumable_threshold=1 << 20,
            resumable_chunk=512 << 10,
            backoff=0.2,
        )
        assert path.stat().st_size > client.resumable_threshold
        image = client.upload(
            path,
            progress=False,
            name="resumed hyperstack",
            tags=["tus", "resumed"],
            annotations={"Stain": "DAPI"},
        )
        chunks = -(-path.stat().st_size // client.resumable_chunk)
        # the creation, one PATCH a chunk, and after the cut a HEAD and the
        # cut chunk's rest again
        assert proxy.connections >= 1 + chunks + 2, proxy.connections
    finally:
        proxy.close()
    local = server.client()
    image = local.image(image.id)
    try:
        assert image.shape == data.shape
        np.testing.assert_array_equal(image.to_numpy(progress=False), data)
        assert image.name == "resumed hyperstack"
        assert sorted(image.tags) == ["resumed", "tus"]
        assert image.annotations == [("Stain", "DAPI")]
    finally:
        image.delete()


def test_a_refused_resumable_upload_raises_the_servers_reason(server: Any, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"this is not a TIFF file\n" * 100_000)
    client = server.client(resumable_threshold=1 << 20)
    with pytest.raises(UnsupportedMediaType) as e:
        client.upload(garbage, progress=False)
    assert e.value.status == 415 and e.value.error
