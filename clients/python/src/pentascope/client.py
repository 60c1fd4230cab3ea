"""HTTP client for the pentascope service: :class:`Client`, :class:`Image`, :class:`Job`."""

from __future__ import annotations

import io
import itertools
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Callable, Literal, Union, overload
from urllib.parse import quote

import numpy as np
import requests
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor
from tqdm.auto import tqdm

from .errors import JobFailed, PentascopeError, error_for

DEFAULT_URL = "http://127.0.0.1:5000"

PathLike = Union[str, "os.PathLike[str]"]
Json = dict[str, Any]
Timeout = Union[float, tuple[float, float], None]
# Builds a request body afresh for each attempt: (data, extra headers).
BodyFactory = Callable[[], tuple[Any, dict[str, str]]]


def _disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for ``progress``: None shows a bar only on a terminal."""
    return None if progress is None else not progress


class Client:
    """A connection to a pentascope server.

    ``url`` defaults to ``$PENTASCOPE_URL`` (else ``http://127.0.0.1:5000``) and
    ``token`` to ``$PENTASCOPE_TOKEN``, sent as ``Authorization: Bearer``.
    Requests answered with 503, or that cannot connect, are retried up to
    ``retries`` times, waiting ``backoff * 2**attempt`` seconds (at most
    ``max_backoff``, or the server's ``Retry-After``) between attempts.
    ``timeout`` is requests' (connect, read) timeout in seconds.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: Timeout = (10.0, 600.0),
        session: requests.Session | None = None,
    ) -> None:
        self.url = (url or os.environ.get("PENTASCOPE_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("PENTASCOPE_TOKEN") or None
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # -- transport ---------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Json | None = None,
        body: BodyFactory | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Sends a request, retrying 503s and connection errors; raises
        :class:`PentascopeError` (a subclass by status) on an error answer."""
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            data = None
            if body is not None:
                data, extra = body()
                headers.update(extra)
            retry_after: float | None = None
            try:
                resp = self.session.request(
                    method,
                    self.url + path,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    stream=stream,
                )
            except requests.ConnectionError:
                if attempt >= self.retries:
                    raise
            else:
                if resp.status_code != 503 or attempt >= self.retries:
                    break
                retry_after = _retry_after(resp)
                resp.close()
            delay = min(self.backoff * 2**attempt, self.max_backoff)
            time.sleep(min(retry_after, self.max_backoff) if retry_after is not None else delay)
            attempt += 1
        if resp.status_code >= 400:
            raise error_for(resp.status_code, _message(resp))
        return resp

    def _json(self, method: str, path: str, **kwargs: Any) -> Json:
        doc: Json = self.request(method, path, **kwargs).json()
        return doc

    # -- images ------------------------------------------------------------

    def upload(
        self, path: PathLike, axes: str | None = None, progress: bool | None = True
    ) -> Image:
        """Uploads the TIFF at ``path``, streamed from disk (never read whole)
        as the multipart field ``file``, with a progress bar (``progress=None``:
        only on a terminal). ``axes`` (e.g. ``"TYX"``) reinterprets the page
        axes of an ambiguous file."""
        path = Path(path)
        opened: list[IO[bytes]] = []
        bar = tqdm(
            total=path.stat().st_size,
            desc=f"upload {path.name}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=_disable(progress),
        )

        def body() -> tuple[Any, dict[str, str]]:
            for f in opened:  # a previous attempt's
                f.close()
            opened.clear()
            f = path.open("rb")
            opened.append(f)
            encoder = MultipartEncoder({"file": (path.name, f, "image/tiff")})
            bar.reset(total=encoder.len)
            monitor = MultipartEncoderMonitor(encoder, lambda m: bar.update(m.bytes_read - bar.n))
            return monitor, {"Content-Type": monitor.content_type}

        try:
            doc = self._json("POST", "/upload", params={"axes": axes} if axes else None, body=body)
        finally:
            for f in opened:
                f.close()
            bar.close()
        return Image(self, doc["image_id"])

    def images(self) -> list[Image]:
        """Every image on the server, oldest first (metadata included)."""
        doc = self._json("GET", "/images")
        return [Image(self, m["image_id"], m) for m in doc["images"]]

    def image(self, image_id: str) -> Image:
        """The image ``image_id`` (raises :class:`NotFound` if there is none)."""
        return Image(self, image_id, self._json("GET", f"/images/{quote(image_id, safe='')}"))

    def delete(self, image_id: str) -> Json:
        """Deletes ``image_id`` (and the PCA score images derived from it)."""
        return self._json("DELETE", f"/images/{quote(image_id, safe='')}")

    def job(self, job_id: str) -> Job:
        """The background job ``job_id``."""
        return Job(self, job_id)

    def health(self) -> Json:
        """The server's ``/health`` document."""
        return self._json("GET", "/health")


class Image:
    """An image stored on the server, presented as TZCYX."""

    def __init__(self, client: Client, image_id: str, metadata: Json | None = None) -> None:
        self.client = client
        self.id = image_id
        self._metadata = metadata

    def __repr__(self) -> str:
        if self._metadata is None:
            return f"Image({self.id!r})"
        return f"Image({self.id!r}, shape={self.shape}, dtype={self.dtype})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Image) and (other.client.url, other.id) == (
            self.client.url,
            self.id,
        )

    def __hash__(self) -> int:
        return hash((self.client.url, self.id))

    @property
    def metadata(self) -> Json:
        """The image's metadata (fetched once; :meth:`refresh` fetches it again)."""
        if self._metadata is None:
            return self.refresh()
        return self._metadata

    def refresh(self) -> Json:
        """Fetches the metadata again."""
        self._metadata = self.client._json("GET", f"/images/{quote(self.id, safe='')}")
        return self._metadata

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """(T, Z, C, Y, X)."""
        t, z, c, y, x = (int(n) for n in self.metadata["shape"])
        return (t, z, c, y, x)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.metadata["dtype"])

    def slice(self, z: int = 0, t: int = 0, c: int = 0) -> np.ndarray[Any, Any]:
        """The exact plane (Y, X) at time ``t``, depth ``z``, channel ``c``."""
        resp = self.client.request(
            "GET",
            "/slice",
            params={"image_id": self.id, "z": z, "time": t, "channel": c, "format": "npy"},
        )
        plane: np.ndarray[Any, Any] = np.load(io.BytesIO(resp.content), allow_pickle=False)
        return plane

    def statistics(self) -> Json:
        """Per-channel ``mean``, ``std``, ``min``, ``max``, ``count`` and histograms."""
        return self.client._json("GET", "/statistics", params={"image_id": self.id})

    @overload
    def analyze(self, components: int = ..., wait: Literal[True] = ...) -> Json: ...

    @overload
    def analyze(self, components: int = ..., *, wait: Literal[False]) -> Job: ...

    @overload
    def analyze(self, components: int, wait: Literal[False]) -> Job: ...

    @overload
    def analyze(self, components: int = ..., wait: bool = ...) -> Json | Job: ...

    def analyze(self, components: int = 3, wait: bool = True) -> Json | Job:
        """PCA with ``components`` components, pixels as samples and channels as
        features. ``wait=True`` returns the result document; ``wait=False``
        submits a background job and returns its :class:`Job`."""
        request: Json = {"image_id": self.id, "components": components}
        if wait:
            return self.client._json("POST", "/analyze", json=request)
        doc = self.client._json("POST", "/analyze", json={**request, "async": True})
        return Job(self.client, doc["job_id"])

    def _download(self, fmt: str) -> requests.Response:
        return self.client.request(
            "GET",
            f"/images/{quote(self.id, safe='')}/download",
            params={"format": fmt},
            stream=True,
        )

    def download(
        self, path: str | Path, format: str = "ome-tiff", progress: bool | None = True
    ) -> Path:
        """Streams the whole image to ``path`` as ``ome-tiff`` (with its channel
        names and physical sizes; tifffile and Fiji read it) or ``npy``."""
        target = Path(path)
        with self._download(format) as resp, open(target, "wb") as out, tqdm(
            total=int(resp.headers.get("Content-Length", 0)) or None,
            unit="B",
            unit_scale=True,
            desc=self.id,
            disable=_disable(progress),
        ) as bar:
            for chunk in resp.iter_content(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
        return target

    def to_numpy(self, progress: bool | None = True) -> np.ndarray[Any, Any]:
        """The whole image as a (T, Z, C, Y, X) array, streamed as one ``.npy``
        into a preallocated array (the response is never held twice)."""
        with self._download("npy") as resp:
            raw = resp.raw
            raw.decode_content = True
            version = np.lib.format.read_magic(raw)
            if version != (1, 0):
                raise PentascopeError(f"unexpected .npy version {version}")
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
            if fortran or tuple(shape) != self.shape:
                raise PentascopeError(f"the download has shape {shape}, expected {self.shape}")
            out = np.empty(shape, dtype=dtype)
            target = memoryview(out.reshape(-1).view(np.uint8))
            done = 0
            with tqdm(
                total=len(target), unit="B", unit_scale=True, desc=self.id,
                disable=_disable(progress),
            ) as bar:
                while done < len(target):
                    chunk = raw.read(min(1 << 20, len(target) - done))
                    if not chunk:
                        raise PentascopeError(
                            f"the download of {self.id} ended after {done} of {len(target)} bytes"
                        )
                    target[done : done + len(chunk)] = chunk
                    done += len(chunk)
                    bar.update(len(chunk))
        return out

    def delete(self) -> Json:
        """Deletes the image on the server."""
        return self.client.delete(self.id)

    def set_public(self, public: bool = True) -> Json:
        """Lets every user of the server read the image (or only its owner again)."""
        self._metadata = self.client._json("PATCH", f"/images/{self.id}", json={"public": public})
        return self._metadata

    def share(self, expires_in: int = 3600) -> str:
        """A URL prefix that reads this image without a key for ``expires_in``
        seconds: put it before a GET route, e.g. ``share() + "slice?image_id=..."``."""
        link = self.client._json("POST", f"/images/{self.id}/links", json={"expires_in": expires_in})
        return self.client.url + link["prefix"]


class Job:
    """A background job (``POST /analyze`` with ``async``), as ``GET /jobs/{id}`` reports it."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def status(self) -> Json:
        """The job document: ``state`` (PENDING, STARTED, SUCCESS, FAILURE),
        ``progress`` (0 to 1), ``result`` or ``error``."""
        return self.client._json("GET", f"/jobs/{quote(self.id, safe='')}")

    def wait(
        self, timeout: float | None = None, progress: bool | None = True, interval: float = 0.5
    ) -> Json:
        """Polls until the job ends and returns its result; raises
        :class:`JobFailed` on FAILURE and :class:`TimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with tqdm(
            total=1.0,
            desc=f"job {self.id[:8]}",
            bar_format="{desc}: {percentage:3.0f}%|{bar}|",
            disable=_disable(progress),
        ) as bar:
            while True:
                doc = self.status()
                state = doc["state"]
                bar.set_description_str(f"job {self.id[:8]} {state}", refresh=False)
                bar.update(float(doc.get("progress") or 0.0) - bar.n)
                if state == "SUCCESS":
                    result: Json = doc["result"]
                    return result
                if state == "FAILURE":
                    raise JobFailed(doc.get("error") or "job failed", self.id)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"job {self.id} still {state} after {timeout} s")
                time.sleep(interval)


def _message(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text.strip() or resp.reason
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return resp.text.strip()


def _retry_after(resp: requests.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
