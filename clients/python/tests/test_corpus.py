"""Every accepted fixture uploads through the client and reads back exactly:
the whole array against expected.json's sha256 (and, where tifffile's axes map
directly onto TZCYX, against tifffile's own array), the statistics and PCA
against numpy's and scikit-learn's."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from conftest import fixtures_path, load_expected

from pentascope import Client

CANONICAL = "TZCYX"
# Larger images are left to the Rust suite (to_numpy fetches them plane by plane).
MAX_SAMPLES = 16_000_000


def _accepted() -> list[str]:
    entries = load_expected(fixtures_path())
    names = [
        key
        for key, e in entries.items()
        if e["expect"] == "accept" and math.prod(e["shape"]) <= MAX_SAMPLES
    ]
    # With the corpus missing, one case that fails on the `fixtures_dir` fixture.
    return sorted(names) or ["tiff/imagej_tzcyx_u16.tif"]


ACCEPTED = _accepted()
WITH_PCA = [k for k in ACCEPTED if "pca" in load_expected(fixtures_path()).get(k, {})]


def le_sha256(array: np.ndarray[Any, Any]) -> str:
    """sha256 of the C-order little-endian bytes."""
    le = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return hashlib.sha256(le.tobytes()).hexdigest()


def tifffile_tzcyx(path: Path) -> np.ndarray[Any, Any] | None:
    """tifffile's array as TZCYX, when its axes are TZCYX letters (S as C)."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes.replace("S", "C")
        if len(set(axes)) != len(axes) or not set(axes) <= set(CANONICAL):
            return None
        data = series.asarray()
    order = sorted(range(len(axes)), key=lambda i: CANONICAL.index(axes[i]))
    data = np.transpose(data, order)
    present = "".join(sorted(axes, key=CANONICAL.index))
    return data.reshape([data.shape[present.index(a)] if a in present else 1 for a in CANONICAL])


def nan_list(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


@pytest.mark.parametrize("name", ACCEPTED)
def test_upload_reads_back_exactly(
    client: Client, fixtures_dir: Path, expected: dict[str, dict[str, Any]], name: str
) -> None:
    want = expected[name]
    path = fixtures_dir / name
    image = client.upload(path, progress=False)
    try:
        assert image.shape == tuple(want["shape"])
        assert image.dtype == np.dtype(want["dtype"])
        assert image.metadata["axes"] == CANONICAL

        first = image.slice(z=0, t=0, c=0)
        assert first.shape == tuple(want["shape"][3:])
        assert le_sha256(first) == want["first_plane_sha256"]

        array = image.to_numpy(progress=False)
        assert array.shape == tuple(want["shape"])
        assert array.dtype == np.dtype(want["dtype"])
        assert le_sha256(array) == want["sha256_tzcyx"]

        reference = tifffile_tzcyx(path)
        if reference is not None:
            np.testing.assert_array_equal(array, reference)

        stats = image.statistics()
        for key in ("mean", "std", "min", "max"):
            assert nan_list(stats[key]) == pytest.approx(
                want["statistics"][key], rel=1e-6, abs=1e-9, nan_ok=True
            ), key
    finally:
        image.delete()


@pytest.mark.parametrize("name", WITH_PCA)
def test_analyze_matches_scikit_learn(
    client: Client, fixtures_dir: Path, expected: dict[str, dict[str, Any]], name: str
) -> None:
    want = expected[name]["pca"]
    image = client.upload(fixtures_dir / name, progress=False)
    try:
        t, z, c, y, x = image.shape
        result = image.analyze(components=2)
        assert result["image_id"] == image.id
        assert result["n_components"] == 2
        assert result["n_samples"] == t * z * y * x
        for key in ("explained_variance", "explained_variance_ratio", "mean"):
            assert result[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), key
        # Loadings: unit, orthogonal rows; each equal to scikit-learn's up to
        # sign where its eigenvalue is apart from its neighbours (a repeated
        # eigenvalue does not fix its eigenvectors).
        comps = np.asarray(result["components"])
        np.testing.assert_allclose(comps @ comps.T, np.eye(2), atol=1e-6)
        ev = want["explained_variance"]
        total = ev[0] / want["explained_variance_ratio"][0]
        gaps = [ev[0] - ev[1], min(ev[0] - ev[1], ev[1] - (total - ev[0] - ev[1]))]
        for i, ref in enumerate(want["components"]):
            if gaps[i] > 1e-6 * total:
                assert abs(float(comps[i] @ np.asarray(ref))) == pytest.approx(1.0, abs=1e-6)

        scores = client.image(result["scores_image_id"])
        assert scores.shape == (t, z, 2, y, x)
        assert scores.dtype == np.dtype("float32")
        if result["pca_result"] is not None:
            first = np.asarray(result["pca_result"][: y * x], dtype=np.float64)
            plane0 = scores.slice(z=0, t=0, c=0).ravel()
            np.testing.assert_allclose(plane0, first[:, 0], rtol=1e-4, atol=1e-3)
    finally:
        image.delete()
