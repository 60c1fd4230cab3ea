"""HTTP client for the pentascope service: :class:`Client`, :class:`Image`, :class:`Job`."""

from __future__ import annotations

import hashlib
import io
import itertools
import json as json_module
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Callable, Literal, Union, overload
from urllib.parse import quote

import numpy as np
import requests
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor
from tqdm.auto import tqdm
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader.uploader import Uploader

from .errors import JobFailed, PentascopeError, error_for

DEFAULT_URL = "http://127.0.0.1:5000"
# Files over this size are uploaded resumably (tus), in chunks of this size
# (tuspy holds one chunk in memory).
RESUMABLE_THRESHOLD = 64 << 20
RESUMABLE_CHUNK = 8 << 20

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
    ``timeout`` is requests' (connect, read) timeout in seconds. Uploads of
    files over ``resumable_threshold`` bytes use the resumable ``/uploads``
    (tus) in chunks of ``resumable_chunk`` bytes.
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
        resumable_threshold: int = RESUMABLE_THRESHOLD,
        resumable_chunk: int = RESUMABLE_CHUNK,
    ) -> None:
        self.url = (url or os.environ.get("PENTASCOPE_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("PENTASCOPE_TOKEN") or None
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.session = session or requests.Session()
        self.resumable_threshold = resumable_threshold
        self.resumable_chunk = resumable_chunk

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
        params: Mapping[str, Any] | list[tuple[str, str]] | None = None,
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
        self,
        path: PathLike,
        axes: str | None = None,
        progress: bool | None = True,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] = (),
        annotations: Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]] = (),
        datasets: Iterable[str | Dataset] = (),
        resumable: bool | None = None,
    ) -> Image:
        """Uploads the TIFF at ``path``, streamed from disk (never read whole)
        as the multipart field ``file``, with a progress bar (``progress=None``:
        only on a terminal). Files larger than ``resumable_threshold`` (or any
        with ``resumable=True``) go to ``/uploads`` with tus (tuspy) instead,
        in chunks that are retried from where the server is after a dropped
        connection. ``axes`` (e.g. ``"TYX"``) reinterprets the page
        axes of an ambiguous file. ``name`` (default: the file's name),
        ``description``, ``tags``, ``annotations`` (a mapping, or key-value
        pairs) and ``datasets`` (datasets, ids, or names of your datasets,
        made if missing) are stored with the image."""
        fields: list[tuple[str, Any]] = []
        if name is not None:
            fields.append(("name", name))
        if description is not None:
            fields.append(("description", description))
        fields += [("tag", t) for t in tags]
        fields += [("annotation", f"{k}={v}") for k, v in _pairs(annotations)]
        fields += [("dataset", d.id if isinstance(d, Dataset) else d) for d in datasets]
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
            # the catalogue fields go before the file, as the server requires
            encoder = MultipartEncoder([*fields, ("file", (path.name, f, "image/tiff"))])
            bar.reset(total=encoder.len)
            monitor = MultipartEncoderMonitor(encoder, lambda m: bar.update(m.bytes_read - bar.n))
            return monitor, {"Content-Type": monitor.content_type}

        if resumable is None:
            resumable = path.stat().st_size > self.resumable_threshold
        if resumable:
            try:
                doc = self._upload_resumable(path, axes, fields, bar)
            finally:
                bar.close()
            return Image(self, doc["image_id"])
        try:
            doc = self._json("POST", "/upload", params={"axes": axes} if axes else None, body=body)
        finally:
            for f in opened:
                f.close()
            bar.close()
        return Image(self, doc["image_id"])

    def _upload_resumable(
        self, path: Path, axes: str | None, fields: list[tuple[str, Any]], bar: Any
    ) -> Json:
        """Sends ``path`` to ``/uploads`` with tuspy (tus 1.0.0) in chunks of
        ``self.resumable_chunk`` bytes, each with its sha256; a chunk that
        fails (dropped connection, 5xx, 409, 460) is retried ``self.retries``
        times from the offset the server holds. Returns the last answer
        (``POST /upload``'s)."""
        metadata: dict[str, str] = {"filename": path.name}
        if axes:
            metadata["axes"] = axes
        lists: dict[str, list[str]] = {}
        for key, value in fields:
            if key in ("tag", "annotation", "dataset"):
                lists.setdefault(key, []).append(str(value))
            else:
                metadata[key] = str(value)
        metadata.update({key: "\n".join(values) for key, values in lists.items()})
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        tus = TusClient(self.url + "/uploads", headers=headers)
        uploader = _Sha256Uploader(
            file_path=str(path),
            client=tus,
            chunk_size=self.resumable_chunk,
            metadata=metadata,
            retries=self.retries,
            # whole seconds, as tuspy types it
            retry_delay=max(1, math.ceil(self.backoff)),
            upload_checksum=True,
        )
        bar.reset(total=path.stat().st_size)
        try:
            while uploader.offset < uploader.stop_at or uploader.url is None:
                uploader.upload_chunk()  # type: ignore[no-untyped-call]
                bar.update(uploader.offset - bar.n)
        except (TusCommunicationError, TusUploadFailed) as e:
            raise _tus_error(e) from e
        request = uploader.request
        if request is None or request.response_content is None:
            raise PentascopeError("the resumable upload ended without an answer")
        doc: Json = json_module.loads(request.response_content)
        return doc

    def images(
        self,
        q: str | None = None,
        *,
        dataset: str | Dataset | None = None,
        tag: str | Iterable[str] | None = None,
        annotation: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        owner: str | None = None,
        dtype: str | None = None,
        flavour: str | None = None,
        kind: str | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        sort: str | None = None,
        page_size: int = 100,
    ) -> Listing:
        """The images you may see that match every filter given, as a lazy
        iterator fetching one page at a time (``len()`` is the number of
        matches). ``q`` matches word prefixes of names, descriptions, channel
        names, tags, annotations and dataset names; ``tag`` and
        ``annotation`` match exactly. ``sort`` is ``created``, ``-created``
        (default), ``name``, ``-name``, ``size`` or ``-size``."""
        params: list[tuple[str, str]] = []
        for key, value in (
            ("q", q),
            ("owner", owner),
            ("dtype", dtype),
            ("flavour", flavour),
            ("kind", kind),
            ("created_after", created_after),
            ("created_before", created_before),
            ("sort", sort),
        ):
            if value is not None:
                params.append((key, value))
        if dataset is not None:
            params.append(("dataset", dataset.id if isinstance(dataset, Dataset) else dataset))
        if tag is not None:
            params += [("tag", t) for t in ([tag] if isinstance(tag, str) else tag)]
        if annotation is not None:
            params += [("annotation", f"{k}={v}") for k, v in _pairs(annotation)]
        params.append(("limit", str(page_size)))
        return Listing(self, "/images", params, "images", lambda m: Image(self, m["image_id"], m))

    def tags(self, prefix: str | None = None) -> Listing:
        """The tags on images you may see, as ``{"tag", "images"}`` documents."""
        params = [("prefix", prefix)] if prefix else []
        return Listing(self, "/tags", params, "tags", lambda t: t)

    def datasets(self, q: str | None = None, *, owner: str | None = None) -> Listing:
        """The datasets you may see (yours and public ones), lazily."""
        params = [(k, v) for k, v in (("q", q), ("owner", owner)) if v is not None]
        return Listing(self, "/datasets", params, "datasets", lambda d: Dataset(self, d))

    def dataset(self, dataset_id: str) -> Dataset:
        """The dataset ``dataset_id``."""
        return Dataset(self, self._json("GET", f"/datasets/{quote(dataset_id, safe='')}"))

    def create_dataset(self, name: str, description: str = "") -> Dataset:
        """Makes a dataset (private until :meth:`Dataset.set_public`)."""
        doc = self._json("POST", "/datasets", json={"name": name, "description": description})
        return Dataset(self, doc)

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
    def series(self) -> Json | None:
        """Which series of its file the image is (``index``, ``name``, ``kind``:
        ``main``, ``thumbnail``, ``label``, ``macro`` or ``image``), or None
        for a file of one series."""
        series: Json | None = self.metadata.get("series")
        return series

    @property
    def siblings(self) -> list[Image]:
        """The other images of the image's file, one per series in the
        file's order (an SVS's thumbnail, label and macro; an OME-TIFF's
        further images), as far as the caller may see them."""
        doc = self.metadata if "siblings" in self.metadata else self.refresh()
        return [Image(self.client, s["image_id"]) for s in doc.get("siblings", [])]

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

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def tags(self) -> list[str]:
        """The image's tags."""
        return list(self.metadata["tags"])

    @property
    def annotations(self) -> list[tuple[str, str]]:
        """The image's key-value annotations in order (a key may repeat)."""
        return [(k, v) for k, v in self.metadata["annotations"]]

    def _patch(self, body: Json) -> Image:
        self._metadata = self.client._json("PATCH", f"/images/{quote(self.id, safe='')}", json=body)
        return self

    def add_tags(self, *tags: str) -> Image:
        """Adds tags (those it has already are kept once)."""
        return self._patch({"add_tags": list(tags)})

    def remove_tags(self, *tags: str) -> Image:
        """Removes tags."""
        return self._patch({"remove_tags": list(tags)})

    def annotate(self, key: str, value: str) -> Image:
        """Adds one key-value annotation (after those it has)."""
        return self._patch({"annotations": [*self.refresh()["annotations"], [key, value]]})

    def update(self, **fields: Any) -> Image:
        """Changes ``name``, ``description``, ``tags`` or ``annotations``."""
        if "annotations" in fields:
            fields["annotations"] = [list(p) for p in _pairs(fields["annotations"])]
        return self._patch(fields)

    def share(self, expires_in: int = 3600) -> str:
        """A URL prefix that reads this image without a key for ``expires_in``
        seconds: put it before a GET route, e.g. ``share() + "slice?image_id=..."``."""
        link = self.client._json("POST", f"/images/{self.id}/links", json={"expires_in": expires_in})
        return self.client.url + link["prefix"]


class Listing:
    """A lazy listing: the first page is fetched at once (so errors show
    where the listing is asked for), later pages as iteration reaches them,
    following the server's cursors. ``len()`` is the number of matches; a
    listing compares equal to a list of the same items."""

    def __init__(
        self,
        client: Client,
        path: str,
        params: list[tuple[str, str]],
        key: str,
        make: Callable[[Json], Any],
    ) -> None:
        self.client, self.path, self.params, self.key, self.make = client, path, params, key, make
        self._first = self._page(None)

    def _page(self, cursor: str | None) -> Json:
        params = self.params + ([("cursor", cursor)] if cursor else [])
        return self.client._json("GET", self.path, params=params)

    def __len__(self) -> int:
        return int(self._first["count"])

    def __iter__(self) -> Iterator[Any]:
        page = self._first
        while True:
            for item in page[self.key]:
                yield self.make(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return
            page = self._page(cursor)

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        for n, item in enumerate(self):
            if n == index:
                return item
        raise IndexError(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{self.path} {len(self)} matches>"


class Dataset:
    """A named group of images."""

    def __init__(self, client: Client, doc: Json) -> None:
        self.client = client
        self.id: str = doc["dataset_id"]
        self.doc = doc

    def __repr__(self) -> str:
        return f"Dataset({self.id!r}, name={self.doc.get('name')!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and (other.client.url, other.id) == (
            self.client.url,
            self.id,
        )

    def __hash__(self) -> int:
        return hash((self.client.url, self.id))

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def image_count(self) -> int:
        """Images in it that you may see (as of the last fetch)."""
        return int(self.doc["image_count"])

    def _path(self) -> str:
        return f"/datasets/{quote(self.id, safe='')}"

    def refresh(self) -> Dataset:
        self.doc = self.client._json("GET", self._path())
        return self

    def images(self, **filters: Any) -> Listing:
        """The images in it that you may see (and that match ``filters``)."""
        return self.client.images(dataset=self.id, **filters)

    def add(self, image: Image | str) -> bool:
        """Puts an image in the dataset; False if it was there already."""
        image_id = image.id if isinstance(image, Image) else image
        doc = self.client._json("PUT", f"{self._path()}/images/{quote(image_id, safe='')}")
        return bool(doc["added"])

    def remove(self, image: Image | str) -> None:
        """Takes an image out of the dataset."""
        image_id = image.id if isinstance(image, Image) else image
        self.client._json("DELETE", f"{self._path()}/images/{quote(image_id, safe='')}")

    def update(self, **fields: Any) -> Dataset:
        """Changes ``name``, ``description`` or ``public``."""
        self.doc = self.client._json("PATCH", self._path(), json=fields)
        return self

    def set_public(self, public: bool = True) -> Dataset:
        return self.update(public=public)

    def delete(self) -> Json:
        """Deletes the dataset; its images stay."""
        return self.client._json("DELETE", self._path())


def _pairs(annotations: Any) -> list[tuple[str, str]]:
    """Key-value pairs from a mapping (a value may be a list) or pairs."""
    if isinstance(annotations, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in annotations.items():
            out += [(k, v)] if isinstance(v, str) else [(k, x) for x in v]
        return out
    return [(k, v) for k, v in annotations]


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


class _Sha256Uploader(Uploader):
    """tuspy's uploader with the checksum the server speaks (sha256)."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)

    def _retry_or_cry(self, error: TusCommunicationError) -> None:
        # a refusal (a file the server will not take) is final: retrying
        # would only find the upload gone and hide why
        status = error.status_code
        if status is not None and 400 <= int(status) < 500 and int(status) not in (409, 423, 460):
            raise error
        super()._retry_or_cry(error)  # type: ignore[no-untyped-call]


def _tus_error(e: TusCommunicationError) -> PentascopeError:
    """A tuspy error as the error the server answered."""
    status = e.status_code
    content = e.response_content or b""
    try:
        doc = json_module.loads(content)
        message = str(doc["error"]) if isinstance(doc, dict) and "error" in doc else str(e)
    except (ValueError, TypeError):
        message = content.decode("utf-8", "replace").strip() or str(e)
    if status is None:
        return PentascopeError(message)
    return error_for(int(status), message)


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
