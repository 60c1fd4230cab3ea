# Fixtures and references for tests/it/segment.rs: writes TIFF files with
# tifffile and, for every case, what scikit-image and scikit-learn compute
# (threshold, foreground fraction, label image, region properties, k-means
# inertia). Usage: python segment_reference.py OUT_DIR
import json
import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops, regionprops_table
from sklearn.cluster import KMeans

out = Path(sys.argv[1])
rng = np.random.default_rng(20261126)


def blobs(shape, sigma):
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (field - field.min()) / (field.max() - field.min())


files = {}


def write(name, data, **kwargs):
    tifffile.imwrite(out / name, data, **kwargs)
    files[name] = data


# 2D uint8 and float32 blobs, plain TIFF
write("blobs2d_u8.tif", (blobs((96, 128), 3) * 255).round().astype(np.uint8))
write("blobs2d_f32.tif", blobs((80, 100), 2.5).astype(np.float32))
# 3D uint16 and float32 blobs that span planes, ImageJ ZYX with physical
# sizes (0.5 µm pixels, 2 µm z step)
imagej = dict(imagej=True, resolution=(2.0, 2.0),
              metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
write("blobs3d_u16.tif", (blobs((6, 64, 80), (1.2, 3, 3)) * 4000).round().astype(np.uint16),
      **imagej)
write("blobs3d_f32.tif", blobs((5, 40, 48), (1.0, 2, 2)).astype(np.float32), **imagej)
# 90,000 isolated pixels: more objects than 16-bit labels hold
grid = np.zeros((600, 600), np.uint8)
yy, xx = np.mgrid[0:300, 0:300]
grid[::2, ::2] = 100 + (yy * 7 + xx * 3) % 100
write("grid_u8.tif", grid)
write("constant_u16.tif", np.full((20, 30), 7, np.uint16))

# (name, file, request, data the request covers as Z×Y×X, first z)
cases = [
    ("u8_otsu", "blobs2d_u8.tif", {"method": "otsu"}),
    ("u8_threshold", "blobs2d_u8.tif", {"method": "threshold", "threshold": 100.5}),
    ("u8_kmeans", "blobs2d_u8.tif", {"method": "kmeans", "n_clusters": 3}),
    ("f32_otsu", "blobs2d_f32.tif", {"method": "otsu"}),
    ("f32_threshold", "blobs2d_f32.tif", {"method": "threshold", "threshold": 0.37}),
    ("f32_kmeans", "blobs2d_f32.tif", {"method": "kmeans"}),
    ("u16_volume", "blobs3d_u16.tif", {"method": "otsu", "scope": "volume"}),
    ("u16_plane", "blobs3d_u16.tif", {"method": "otsu", "z": 2}),
    ("u16_kmeans_volume", "blobs3d_u16.tif", {"method": "kmeans", "n_clusters": 4, "scope": "volume"}),
    ("f32_volume", "blobs3d_f32.tif", {"method": "otsu", "scope": "volume"}),
    ("grid", "grid_u8.tif", {"method": "otsu"}),
]

def properties(block, lab, z0):
    """Every object's properties, vectorised (scipy.ndimage over the Z×Y×X
    block), then checked against skimage.measure.regionprops on up to 300
    objects (regionprops takes seconds for tens of thousands)."""
    n = int(lab.max())
    index = np.arange(1, n + 1)
    flat = lab.ravel()
    area = np.bincount(flat, minlength=n + 1)[1:]
    coords = np.indices(lab.shape).reshape(3, -1)
    centroid = [np.bincount(flat, weights=c, minlength=n + 1)[1:] / area for c in coords]
    values = block.astype(np.float64)
    mean = ndimage.mean(values, lab, index)
    lo = ndimage.minimum(block, lab, index)
    hi = ndimage.maximum(block, lab, index)
    boxes = ndimage.find_objects(lab)
    objects = []
    for i in range(n):
        box = boxes[i]
        objects.append({
            "label": i + 1,
            "area": int(area[i]),
            "centroid": [float(centroid[0][i] + z0), float(centroid[1][i]), float(centroid[2][i])],
            "bbox": [box[0].start + z0, box[1].start, box[2].start,
                     box[0].stop + z0, box[1].stop, box[2].stop],
            "mean_intensity": float(mean[i]),
            "min_intensity": float(lo[i]),
            "max_intensity": float(hi[i]),
        })
    # the same, by scikit-image (2D images as 2D, as a user would call it)
    flat2d = lab.shape[0] == 1
    for r in regionprops(lab[0] if flat2d else lab,
                         intensity_image=block[0] if flat2d else block):
        if r.label > 300:
            break
        o = objects[r.label - 1]
        centroid = ([float(z0)] if flat2d else []) + [float(c) for c in r.centroid]
        b = r.bbox
        bbox = [z0, b[0], b[1], z0 + 1, b[2], b[3]] if flat2d else list(b)
        assert o["area"] == r.area, (o, r.area)
        assert np.allclose(o["centroid"], centroid, rtol=0, atol=1e-12), (o, centroid)
        assert o["bbox"] == [int(v) for v in bbox], (o, bbox)
        assert o["min_intensity"] == float(r.intensity_min)
        assert o["max_intensity"] == float(r.intensity_max)
        # skimage's mean is in the image's precision (float32 for float32
        # images); the reference keeps the exact float64 mean
        tol = 1e-6 if block.dtype == np.float32 else 1e-12
        assert abs(o["mean_intensity"] - float(r.intensity_mean)) <= tol * max(1, abs(o["mean_intensity"]))
    return objects


references = {}
for case, name, request in cases:
    data = files[name]
    if data.ndim == 2:
        data = data[None]
    if request.get("scope") == "volume":
        block, z0 = data, 0
    else:
        z0 = request.get("z", 0)
        block = data[z0:z0 + 1]
    ref = {"file": name, "request": request}
    method = request["method"]
    if method == "kmeans":
        k = request.get("n_clusters", 2)
        x = block.reshape(-1, 1).astype(np.float64)
        model = KMeans(n_clusters=k, random_state=42).fit(x)
        ref["sklearn_inertia"] = float(model.inertia_)
        ref["n_samples"] = int(block.size)
    else:
        if method == "otsu":
            threshold = threshold_otsu(block if block.shape[0] > 1 else block[0])
            fg = block > threshold
        else:
            threshold = request["threshold"]
            fg = block > threshold  # NumPy 2: a Python float compares in float32 for float32 data
        ref["threshold"] = float(threshold)
        ref["foreground_fraction"] = float(fg.mean())
        if block.shape[0] == 1:
            lab = label(fg[0])[None]
        else:
            lab = label(fg)
        np.save(out / f"{case}.labels.npy", lab.astype("<u4"))
        ref["objects"] = properties(block, lab, z0)
        if lab.max() <= 2000:
            # every object by scikit-image's regionprops_table, over the
            # Z×Y×X block (Z from the first plane segmented)
            table = regionprops_table(lab, intensity_image=block, properties=(
                "label", "area", "centroid", "bbox",
                "intensity_mean", "intensity_min", "intensity_max"))
            for key in ("centroid-0", "bbox-0", "bbox-3"):
                table[key] = table[key] + z0
            ref["regionprops_table"] = {k: v.tolist() for k, v in table.items()}
    references[case] = ref

json.dump({"cases": references}, open(out / "references.json", "w"))
print(json.dumps({"ok": True, "numpy": np.__version__}))
