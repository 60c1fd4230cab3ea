"""The original design's usage, verbatim, against `pentascope serve` and a
`pentascope worker` that share a data directory and a Redis broker; and the
Celery task objects of `pentascope.tasks`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from conftest import Process, Server

from pentascope import JobFailed, default_client


@pytest.fixture(scope="module")
def deployment(
    pentascope_bin: Path, celery_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """serve + worker on one data directory and Redis; the environment of the
    original service (PENTASCOPE_URL, CELERY_BROKER_URL, CELERY_RESULT_BACKEND)."""
    data_dir = tmp_path_factory.mktemp("deployment") / "data"
    env = {"CELERY_BROKER_URL": celery_redis, "CELERY_RESULT_BACKEND": celery_redis}
    server = Server(pentascope_bin, data_dir, env)
    worker = Process(pentascope_bin, "worker", data_dir, env)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PENTASCOPE_URL", server.url)
        for key, value in env.items():
            mp.setenv(key, value)
        yield server
        default_client().close()  # its keep-alive connection would delay the shutdown
    worker.stop()
    server.stop()


@pytest.fixture
def microscopy_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray[Any, Any]:
    """microscopy_data.tif in the working directory: T=2, Z=10, C=3, 64x64 uint16."""
    rng = np.random.default_rng(5)
    data = rng.integers(0, 4096, (2, 10, 3, 64, 64), dtype=np.uint16)
    data[:, :, 1] += data[:, :, 0] // 2
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("microscopy_data.tif", data, imagej=True, metadata={"axes": "TZCYX"})
    return data


def test_original_design_snippet(deployment: Server, microscopy_data: np.ndarray[Any, Any]) -> None:
    from celery.signals import after_task_publish

    from pentascope import analyze_image, get_slice, upload_image
    from pentascope.tasks import heavy_pca

    sent: list[str] = []

    def record(headers: dict[str, Any], **_: Any) -> None:
        sent.append(headers["id"])

    after_task_publish.connect(record, weak=False)
    try:
        # -- the original design's "Scientific Image Analysis" --
        # Upload image
        image_id = upload_image("microscopy_data.tif")

        # Get middle slice
        middle_slice = get_slice(image_id, z=5, t=0, channel=0)

        # Run PCA
        pca_results = analyze_image(image_id, components=3)

        # -- the original design's "Batch Processing" --
        image_list = [image_id, upload_image("microscopy_data.tif")]
        # Using async tasks
        for image in image_list:
            heavy_pca.delay(image_id=image, n_components=3)
    finally:
        after_task_publish.disconnect(record)

    assert isinstance(image_id, str) and image_id.startswith("image_")
    np.testing.assert_array_equal(middle_slice, microscopy_data[0, 5, 0])
    assert middle_slice.dtype == np.uint16
    assert pca_results["image_id"] == image_id
    assert pca_results["n_components"] == 3
    assert len(pca_results["explained_variance_ratio"]) == 3
    assert len(pca_results["components"]) == 3

    assert len(sent) == len(image_list)
    for task_id, image in zip(sent, image_list):
        result = heavy_pca.AsyncResult(task_id).get(timeout=60)
        assert result["image_id"] == image
        assert result["n_components"] == 3
        for key in ("explained_variance", "explained_variance_ratio", "components", "mean"):
            np.testing.assert_allclose(result[key], pca_results[key], rtol=1e-9, err_msg=key)
        # the task sent from Python is a job of the service too
        job = default_client().job(task_id).status()
        assert job["state"] == "SUCCESS" and job["result"] == result


def test_heavy_pca_task(deployment: Server, microscopy_data: np.ndarray[Any, Any]) -> None:
    from pentascope.tasks import app, heavy_pca

    assert app.conf.broker_url == os.environ["CELERY_BROKER_URL"]
    assert app.conf.task_default_queue == "celery"
    image = default_client().upload("microscopy_data.tif", progress=False)
    result = heavy_pca.delay(image_id=image.id, n_components=3).get(timeout=60)
    expected = image.analyze(components=3)
    for key in ("n_components", "n_samples", "explained_variance", "components", "mean"):
        assert result[key] == expected[key], key

    bad = heavy_pca.delay(image_id="image_999999", n_components=3)
    with pytest.raises(LookupError, match="not found"):
        bad.get(timeout=60)
    with pytest.raises(JobFailed, match="not found") as failed:
        default_client().job(bad.id).wait(timeout=60, progress=False)
    assert failed.value.job_id == bad.id

    # an API job goes through the broker to the worker too
    job = image.analyze(components=2, wait=False)
    assert job.wait(timeout=60, progress=False)["n_components"] == 2
