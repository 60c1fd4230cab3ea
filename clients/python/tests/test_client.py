"""The client against the real server: image lifecycle, slices against
tifffile, upload options, error mapping, jobs; and its retries and headers
against a stub server."""

from __future__ import annotations

import http.server
import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tifffile

import pentascope
from pentascope import (
    BadRequest,
    Client,
    Forbidden,
    Image,
    Job,
    NotFound,
    PayloadTooLarge,
    PentascopeError,
    ServiceUnavailable,
    Unprocessable,
    Unauthorized,
    UnsupportedMediaType,
)


@pytest.fixture(scope="module")
def hyperstack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray[Any, Any]]:
    """An ImageJ hyperstack T=2, Z=10, C=3, 64x64 uint16 and its pixels."""
    data = np.random.default_rng(7).integers(0, 65535, (2, 10, 3, 64, 64), dtype=np.uint16)
    data[:, :, 1] //= 2  # channels that differ, for a PCA with 3 distinct components
    data[:, :, 2] = data[:, :, 0] // 3 + data[:, :, 2] // 2
    path = tmp_path_factory.mktemp("hyperstack") / "microscopy_data.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX"})
    return path, data


def test_image_lifecycle(
    client: Client, hyperstack: tuple[Path, np.ndarray[Any, Any]], tmp_path: Path
) -> None:
    path, data = hyperstack
    image = client.upload(path, progress=False)
    assert isinstance(image, Image) and image.id.startswith("image_")

    assert image.shape == (2, 10, 3, 64, 64)
    assert image.dtype == np.uint16
    meta = image.metadata
    assert meta["original_filename"] == "microscopy_data.tif"
    assert meta["T"] == 2 and meta["Z"] == 10 and meta["Channels"] == 3
    assert image.metadata is meta  # cached
    assert image.refresh() == meta and image.metadata is not meta

    assert client.image(image.id).metadata == meta
    assert image in client.images()

    for t in range(2):
        for z in range(10):
            for c in range(3):
                plane = image.slice(z=z, t=t, c=c)
                assert plane.dtype == np.uint16
                np.testing.assert_array_equal(plane, data[t, z, c])
    np.testing.assert_array_equal(image.to_numpy(progress=False), data)

    exported = image.download(tmp_path / "exported.ome.tif", progress=False)
    with tifffile.TiffFile(exported) as tif:
        assert tif.is_ome
        series = tif.series[0]
        assert series.get_axes(squeeze=False).startswith("TZCYX")
        np.testing.assert_array_equal(series.asarray(squeeze=False).reshape(data.shape), data)
    again = client.upload(exported, progress=False)
    np.testing.assert_array_equal(again.to_numpy(progress=False), data)
    again.delete()

    stats = image.statistics()
    flat = data.transpose(2, 0, 1, 3, 4).reshape(3, -1)
    assert stats["mean"] == pytest.approx(flat.mean(axis=1).tolist(), rel=1e-9)
    assert stats["std"] == pytest.approx(flat.std(axis=1).tolist(), rel=1e-9)
    assert stats["min"] == flat.min(axis=1).tolist()
    assert stats["max"] == flat.max(axis=1).tolist()

    result = image.analyze(components=3)
    assert result["n_components"] == 3
    assert result["n_samples"] == 2 * 10 * 64 * 64
    for key in ("explained_variance", "explained_variance_ratio", "components", "mean"):
        assert len(result[key]) == 3, key
    assert sum(result["explained_variance_ratio"]) == pytest.approx(1.0)
    assert result["mean"] == pytest.approx(stats["mean"], rel=1e-9)
    scores = client.image(result["scores_image_id"])
    assert scores.shape == (2, 10, 3, 64, 64) and scores.dtype == np.float32

    assert image.delete()["image_id"] == image.id
    with pytest.raises(NotFound):
        image.refresh()
    with pytest.raises(NotFound):  # deleting the source deleted the scores
        scores.refresh()
    assert image not in client.images()


def test_series_of_one_file(client: Client, tmp_path: Path) -> None:
    """An OME-TIFF of two images: the upload is the first, the second its sibling."""
    rng = np.random.default_rng(26)
    first = rng.integers(0, 65535, (3, 16, 20), dtype=np.uint16)
    second = rng.integers(0, 255, (12, 10), dtype=np.uint8)
    path = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(first, metadata={"axes": "ZYX", "Name": "first"})
        tif.write(second, metadata={"axes": "YX", "Name": "second"})
    image = client.upload(path, progress=False)
    assert image.series is not None and image.series["kind"] == "main"
    (sibling,) = image.siblings
    assert sibling.series is not None and sibling.series["name"] == "second"
    assert sibling.siblings == [image]
    np.testing.assert_array_equal(sibling.slice(), second)
    np.testing.assert_array_equal(image.slice(z=2), first[2])


def test_upload_axes(client: Client, fixtures_dir: Path) -> None:
    path = fixtures_dir / "tiff" / "plain_multipage_u16.tif"
    as_z = client.upload(path, progress=False)
    as_t = client.upload(path, axes="TYX", progress=False)
    try:
        assert as_z.shape == (1, 7, 1, 32, 32)
        assert as_t.shape == (7, 1, 1, 32, 32)
        np.testing.assert_array_equal(as_t.slice(t=4), as_z.slice(z=4))
    finally:
        as_z.delete()
        as_t.delete()


def test_upload_shows_progress(
    client: Client,
    hyperstack: tuple[Path, np.ndarray[Any, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = hyperstack
    image = client.upload(path, progress=True)
    image.to_numpy(progress=True)
    err = capsys.readouterr().err
    assert "upload microscopy_data.tif" in err and "100%" in err
    assert f"{image.id}: 100%" in err
    image.delete()


def test_errors(client: Client, fixtures_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as e:
        client.image("image_999999")
    assert e.value.status == 404 and "not found" in e.value.error
    assert isinstance(e.value, LookupError) and isinstance(e.value, PentascopeError)
    with pytest.raises(NotFound):
        Image(client, "image_999999").slice()
    with pytest.raises(NotFound):
        client.delete("image_999999")
    with pytest.raises(NotFound):
        client.job("00000000-0000-0000-0000-000000000000").status()

    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"this is not a TIFF file\n" * 100)
    with pytest.raises(UnsupportedMediaType) as e415:
        client.upload(garbage, progress=False)
    assert e415.value.status == 415 and e415.value.error

    with pytest.raises(Unprocessable) as e422:
        client.upload(fixtures_dir / "tiff" / "bad_truncated.tif", progress=False)
    assert e422.value.status == 422 and "truncated" in e422.value.error

    with pytest.raises(PayloadTooLarge) as e413:
        client.upload(fixtures_dir / "tiff" / "bad_bomb_200000x200000.tif", progress=False)
    assert e413.value.status == 413

    image = client.upload(fixtures_dir / "tiff" / "ome_tczyx_u16.ome.tif", progress=False)
    try:
        with pytest.raises(BadRequest) as e400:
            image.slice(z=7)
        assert e400.value.status == 400 and "out of range" in e400.value.error
        assert isinstance(e400.value, ValueError)
        with pytest.raises(BadRequest):
            image.analyze(components=4)
    finally:
        image.delete()


def test_job(client: Client, fixtures_dir: Path) -> None:
    image = client.upload(fixtures_dir / "tiff" / "ome_tczyx_u16.ome.tif", progress=False)
    try:
        job = image.analyze(components=2, wait=False)
        assert isinstance(job, Job)
        result = job.wait(timeout=120, progress=False)
        status = job.status()
        assert status["state"] == "SUCCESS" and status["progress"] == 1.0
        assert status["result"] == result
        expected = image.analyze(components=2)
        for key in (
            "n_components",
            "explained_variance",
            "explained_variance_ratio",
            "components",
            "mean",
        ):
            assert result[key] == expected[key], key
        assert client.job(job.id).wait(timeout=5, progress=False) == result
    finally:
        image.delete()


def test_import_does_not_need_celery() -> None:
    code = (
        "import sys, pentascope\n"
        "from pentascope import upload_image, get_slice, analyze_image, Client\n"
        "assert 'celery' not in sys.modules, 'celery imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- against a stub server -----------------------------------------------------


class Stub(http.server.ThreadingHTTPServer):
    """Answers each request with the next (status, body) of ``script``; records requests."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]], port: int = 0) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", port), StubHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class StubHandler(http.server.BaseHTTPRequestHandler):
    server: Stub

    def log_message(self, *args: Any) -> None:
        pass

    def handle_one(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        status, doc = self.server.script.pop(0)
        payload = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = handle_one


@pytest.fixture
def stub() -> Iterator[Any]:
    made: list[Stub] = []

    def make(script: list[tuple[int, dict[str, Any]]], port: int = 0) -> Stub:
        s = Stub(script, port)
        made.append(s)
        return s

    yield make
    for s in made:
        s.shutdown()
        s.server_close()


def test_retries_503_with_backoff(stub: Any) -> None:
    busy = (503, {"error": "database unavailable"})
    server = stub([busy, busy, (200, {"count": 0, "images": []})])
    client = Client(server.url, retries=2, backoff=0.05)
    started = time.monotonic()
    assert client.images() == []
    assert time.monotonic() - started >= 0.05 + 0.1
    assert len(server.requests) == 3

    server = stub([busy, busy])
    with pytest.raises(ServiceUnavailable) as e:
        Client(server.url, retries=1, backoff=0.01).images()
    assert e.value.status == 503 and e.value.error == "database unavailable"
    assert len(server.requests) == 2


def test_retries_connection_errors(stub: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        Client(f"http://127.0.0.1:{port}", retries=1, backoff=0.01).images()

    timer = threading.Timer(0.3, lambda: stub([(200, {"count": 0, "images": []})], port))
    timer.start()
    try:
        assert Client(f"http://127.0.0.1:{port}", retries=6, backoff=0.1).images() == []
    finally:
        timer.join()


def test_upload_retried_streams_the_file_again(stub: Any, tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    content = bytes(range(256)) * 4096
    path.write_bytes(content)
    server = stub(
        [
            (503, {"error": "busy"}),
            (200, {"image_id": "image_9", "shape": [1] * 5, "dtype": "uint8"}),
        ]
    )
    image = Client(server.url, backoff=0.01).upload(path, axes="ZYX", progress=False)
    assert image.id == "image_9"
    assert len(server.requests) == 2
    for method, target, headers, body in server.requests:
        assert (method, target) == ("POST", "/upload?axes=ZYX")
        assert int(headers["Content-Length"]) == len(body)
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body
        )
        (part,) = message.iter_parts()
        assert part.get_param("name", header="content-disposition") == "file"
        assert part.get_filename() == "stack.tif"
        assert part.get_payload(decode=True) == content


def test_token_and_url_from_environment(stub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = stub([(200, {"count": 0, "images": []}), (401, {"error": "bad token"})])
    monkeypatch.setenv("PENTASCOPE_URL", server.url + "/")
    monkeypatch.setenv("PENTASCOPE_TOKEN", "s3cret")
    client = Client()
    assert client.url == server.url
    client.images()
    assert server.requests[0][2]["Authorization"] == "Bearer s3cret"
    with pytest.raises(pentascope.Unauthorized) as e:
        client.images()
    assert e.value.status == 401 and e.value.error == "bad token"
    assert pentascope.default_client().url == server.url


def test_access_control(
    start_process: Any, pentascope_bin: Path, fixtures_dir: Path, tmp_path: Path
) -> None:
    """Keys made with the CLI; 401 without, 403 with too small a scope; links."""
    data = tmp_path / "data"
    server = start_process(data, {"PENTASCOPE_AUTH": "required"})

    def cli(*args: str) -> str:
        out = subprocess.run(
            [str(pentascope_bin), *args, "--data-dir", str(data)],
            capture_output=True, text=True, check=True,
        )
        return out.stdout.strip()

    cli("user", "create", "bob")
    writer = server.client(token=cli("token", "create", "--user", "bob", "--scope", "write"))
    reader = server.client(token=cli("token", "create", "--user", "bob", "--scope", "read"))
    image = writer.upload(fixtures_dir / "tiff" / "ome_tczyx_u16.ome.tif", progress=False)
    assert [i.id for i in reader.images()] == [image.id]
    with pytest.raises(Unauthorized, match="Bearer"):
        server.client(token="").images()
    with pytest.raises(Forbidden, match="needs scope write"):
        reader.upload(fixtures_dir / "tiff" / "ome_tczyx_u16.ome.tif", progress=False)
    assert image.set_public(True)["public"] is True
    prefix = image.share(expires_in=60)
    plane = requests.get(prefix + f"slice?image_id={image.id}&format=npy&z=1", timeout=30)
    assert plane.status_code == 200
    assert np.array_equal(np.load(io.BytesIO(plane.content)), image.slice(z=1))
    assert requests.get(prefix + "images", timeout=30).status_code == 403


def test_catalogue(client: Client, tmp_path: Path) -> None:
    """Name, tags, annotations and datasets at upload; search as a lazy
    iterator over pages; tags and annotations changed; datasets."""
    import tifffile

    paths = []
    for n in range(3):
        path = tmp_path / f"plate_{n}.tif"
        tifffile.imwrite(path, np.full((2, 4, 5), n, dtype=np.uint8))
        paths.append(path)
    first = client.upload(
        paths[0],
        progress=False,
        name="Mouse cortex",
        description="Confocal",
        tags=["DAPI", "cortex"],
        annotations={"Stain": "DAPI", "Mouse": ["M12", "M13"]},
        datasets=["Screen 7"],
    )
    others = [client.upload(p, progress=False, tags=["DAPI"]) for p in paths[1:]]
    assert first.name == "Mouse cortex"
    assert first.tags == ["DAPI", "cortex"]
    assert sorted(first.annotations) == [("Mouse", "M12"), ("Mouse", "M13"), ("Stain", "DAPI")]

    assert [i.id for i in client.images(q="mouse cort")] == [first.id]
    assert [i.id for i in client.images(annotation={"Mouse": "M13"})] == [first.id]
    # one image a page: the iterator follows the cursors
    dapi = client.images(tag="DAPI", sort="name", page_size=1)
    assert len(dapi) == 3
    assert [i.name for i in dapi] == sorted(i.name for i in [first, *others])
    assert list(client.tags(prefix="cor")) == [{"tag": "cortex", "images": 1}]

    first.add_tags("new").remove_tags("cortex")
    assert first.tags == ["DAPI", "new"]
    first.annotate("Objective", "63x")
    assert ("Objective", "63x") in first.annotations
    assert [i.id for i in client.images(q="63x")] == [first.id]

    (screen,) = client.datasets(q="screen")
    assert screen.name == "Screen 7" and screen.image_count == 1
    assert screen.add(others[0]) is True and screen.add(others[0]) is False
    assert {i.id for i in screen.images()} == {first.id, others[0].id}
    made = client.create_dataset("Empty", "nothing yet")
    assert client.dataset(made.id).image_count == 0
    made.delete()
    assert [d.id for d in client.datasets()] == [screen.id]
