"""Reference results for tests/segment.rs, from scikit-image and scikit-learn.

Usage: python segment_check.py DIR

DIR/manifest.json lists the cases the Rust test wrote: each has `name`,
`dtype` (NumPy name), `shape` (2 or 3 axes), `label` (whether to label it)
and `clusters` (the k of each k-means run). The samples are in
DIR/<name>.raw, little-endian, C order. For each case this writes
DIR/<name>.ref.json and, when labelled, DIR/<name>.labels.raw (uint32, C order).

Needs numpy, scipy, scikit-image and scikit-learn.
"""

import json
import sys
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import skimage
import sklearn
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops_table
from sklearn.cluster import KMeans

# Above this many objects regionprops_table (a Python loop per object) is
# slow; the vectorised properties, checked against it on the smaller cases,
# are used instead.
REGIONPROPS_MAX_OBJECTS = 5000


def vectorised_props(labels, data):
    """area, centroid, bbox, mean/min/max intensity per label, with NumPy and
    SciPy (float64 sums, as the Rust side; regionprops_table agrees)."""
    n = int(labels.max())
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1)[1:]
    grids = np.indices(labels.shape)
    centroid = [
        np.bincount(flat, weights=g.ravel().astype(np.float64), minlength=n + 1)[1:] / area
        for g in grids
    ]
    slices = ndi.find_objects(labels)
    ndim = labels.ndim
    bbox = [np.array([s[a].start for s in slices]) for a in range(ndim)] + [
        np.array([s[a].stop for s in slices]) for a in range(ndim)
    ]
    index = np.arange(1, n + 1)
    mean = (
        np.bincount(flat, weights=data.astype(np.float64).ravel(), minlength=n + 1)[1:] / area
    )
    lo = np.asarray(ndi.minimum(data, labels, index), dtype=np.float64)
    hi = np.asarray(ndi.maximum(data, labels, index), dtype=np.float64)
    return {
        "label": index,
        "area": area,
        "centroid": centroid,
        "bbox": bbox,
        "mean": mean,
        "min": lo,
        "max": hi,
    }


def skimage_props(labels, data):
    ndim = labels.ndim
    t = regionprops_table(
        labels,
        intensity_image=data,
        properties=(
            "label",
            "area",
            "centroid",
            "bbox",
            "intensity_mean",
            "intensity_min",
            "intensity_max",
        ),
    )
    return {
        "label": t["label"],
        "area": t["area"],
        "centroid": [t[f"centroid-{a}"] for a in range(ndim)],
        "bbox": [t[f"bbox-{a}"] for a in range(2 * ndim)],
        "mean": np.asarray(t["intensity_mean"], dtype=np.float64),
        "min": np.asarray(t["intensity_min"], dtype=np.float64),
        "max": np.asarray(t["intensity_max"], dtype=np.float64),
    }


def check_agree(a, b, float32):
    """The vectorised properties agree with regionprops_table."""
    assert np.array_equal(a["label"], b["label"])
    assert np.array_equal(a["area"], b["area"])
    for x, y in zip(a["centroid"], b["centroid"]):
        assert np.allclose(x, y, rtol=1e-12, atol=0)
    for x, y in zip(a["bbox"], b["bbox"]):
        assert np.array_equal(x, y)
    assert np.array_equal(a["min"], b["min"])
    assert np.array_equal(a["max"], b["max"])
    # regionprops averages float32 intensities in float32.
    assert np.allclose(a["mean"], b["mean"], rtol=1e-5 if float32 else 1e-12, atol=0)


def exact(v):
    """A float as text that parses back to the same double (the Rust side
    parses it with `str::parse`, which is correctly rounded; JSON numbers
    would go through serde_json's faster, not always exact, parser)."""
    return repr(float(v))


def as_3d(props, ndim):
    """Properties laid out as the Rust side's (z, y, x), z = 0 for 2D."""
    n = len(props["label"])
    if ndim == 2:
        zeros, ones = np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)
        props["centroid"] = [np.zeros(n)] + list(props["centroid"])
        b = props["bbox"]
        props["bbox"] = [zeros, b[0], b[1], ones, b[2], b[3]]
    return {
        "label": [int(v) for v in props["label"]],
        "area": [int(v) for v in props["area"]],
        "centroid": [[exact(v) for v in c] for c in props["centroid"]],
        "bbox": [[int(v) for v in b] for b in props["bbox"]],
        "mean": [exact(v) for v in props["mean"]],
        "min": [exact(v) for v in props["min"]],
        "max": [exact(v) for v in props["max"]],
    }


def run_case(directory, case):
    name = case["name"]
    dtype = np.dtype(case["dtype"]).newbyteorder("<")
    data = np.fromfile(directory / f"{name}.raw", dtype=dtype).reshape(case["shape"])
    data = data.astype(dtype.newbyteorder("="))
    out = {"versions": {"skimage": skimage.__version__, "sklearn": sklearn.__version__}}

    first = data.reshape(-1)[0]
    constant = bool(np.all(data == first))
    out["constant"] = constant
    if not constant:
        threshold = threshold_otsu(data)
        out["threshold"] = exact(threshold)
        foreground = data > threshold
        out["foreground"] = int(foreground.sum())

        if case["label"]:
            labels = label(foreground)
            assert labels.max() < 2**32
            labels.astype("<u4").tofile(directory / f"{name}.labels.raw")
            props = vectorised_props(labels, data)
            if labels.max() <= REGIONPROPS_MAX_OBJECTS:
                reference = skimage_props(labels, data)
                check_agree(props, reference, data.dtype == np.float32)
                out["skimage_mean"] = [exact(v) for v in reference["mean"]]
            out["props"] = as_3d(props, data.ndim)

    out["kmeans"] = {}
    x = data.reshape(-1, 1).astype(np.float64)
    for k in case["clusters"]:
        model = KMeans(n_clusters=k, random_state=42).fit(x)
        out["kmeans"][str(k)] = {
            "inertia": exact(model.inertia_),
            "centres": sorted(exact(c) for c in model.cluster_centers_.ravel()),
        }

    (directory / f"{name}.ref.json").write_text(json.dumps(out))


def main():
    directory = Path(sys.argv[1])
    manifest = json.loads((directory / "manifest.json").read_text())
    for case in manifest["cases"]:
        run_case(directory, case)


if __name__ == "__main__":
    main()
