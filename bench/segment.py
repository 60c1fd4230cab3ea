#!/usr/bin/env python3
"""Segmentation benchmark: Otsu + connected components + region properties,
pentascope (release server, POST /segment over HTTP) against scikit-image
(`threshold_otsu`, `label`, `regionprops`) on the same files, in one run.

    .venv/bin/python bench/segment.py [--binary target/release/pentascope] [--quick]

Inputs (made under bench/out/ with tifffile, reused when present): a
1024 x 1024 uint16 plane and a 20 x 1024 x 1024 uint16 volume of smoothed
noise (blobs that span planes). pentascope: the image is uploaded first (not
timed); the row times `POST /segment` (Otsu, objects, labels image written)
and reports the server's peak RSS during it (VmHWM reset before). Python:
one process per case reads the TIFF with tifffile, then `threshold_otsu`,
`label` (full connectivity), `regionprops` with the same properties
(area, centroid, bbox, intensity mean/min/max, read for every object); the
row times the computation after the read, and the process's peak RSS
(VmHWM) includes the data it holds. Both must find the same threshold and
number of objects. Prints a markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (helpers: Server, upload, VmHWM, formatting)

CHILD = r"""
import json, sys, time
import numpy as np, tifffile
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
data = tifffile.imread(sys.argv[1])
t0 = time.perf_counter()
threshold = threshold_otsu(data)
lab = label(data > threshold)
objects = [(r.label, r.area, r.centroid, r.bbox, r.intensity_mean, r.intensity_min,
            r.intensity_max) for r in regionprops(lab, intensity_image=data)]
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "peak_kib": hwm(), "threshold": float(threshold),
                  "n_objects": len(objects)}))
"""


def make(path, shape, sigma, seed):
    if os.path.exists(path):
        return
    import numpy as np
    import tifffile
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    field = (field - field.min()) / (field.max() - field.min())
    data = (field * 60000).astype(np.uint16)
    kwargs = {"imagej": True, "metadata": {"axes": "ZYX"}} if len(shape) == 3 else {}
    tifffile.imwrite(path + ".tmp", data, **kwargs)
    os.replace(path + ".tmp", path)


def python_side(path):
    p = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1][:200]}
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(bench.ROOT, "target", "release", "pentascope"))
    ap.add_argument("--quick", action="store_true", help="256 x 256 and 4 x 256 x 256 instead")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (median reported)")
    args = ap.parse_args()
    os.makedirs(bench.OUT, exist_ok=True)
    n = 256 if args.quick else 1024
    planes = 4 if args.quick else 20
    cases = [
        (f"{n}×{n} plane", os.path.join(bench.OUT, f"seg_plane_{n}.tif"), (n, n), 4, "plane"),
        (f"{planes}×{n}×{n} volume", os.path.join(bench.OUT, f"seg_volume_{planes}x{n}.tif"),
         (planes, n, n), (1.5, 4, 4), "volume"),
    ]
    for _, path, shape, sigma, _ in cases:
        bench.log(f"preparing {os.path.relpath(path, bench.ROOT)}")
        make(path, shape, sigma, 11)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pentascope-segbench-") as tmp:
        server = bench.Server(args.binary, os.path.join(tmp, "data"), os.path.join(tmp, "server.log"))
        try:
            for name, path, shape, _, scope in cases:
                image = bench.upload(server, path, os.path.join(tmp, "upload.json"))["image_id"]
                body = json.dumps({"image_id": image, "method": "otsu", "scope": scope}).encode()
                ps = []
                for _ in range(args.repeat):
                    def go():
                        status, _, data = server.request(
                            "POST", "/segment", body, {"Content-Type": "application/json"})
                        if status != 200:
                            raise RuntimeError(f"/segment answered {status}: {data[:300]!r}")
                        return json.loads(data)
                    m = server.measure(go)
                    server.request("DELETE", f"/images/{m['out']['labels_image_id']}")
                    ps.append(m)
                    bench.log(f"pentascope {name}: {m['wall_s']:.3f} s")
                ref = []
                for _ in range(args.repeat):
                    r = python_side(path)
                    if "error" in r:
                        raise RuntimeError(f"scikit-image {name}: {r['error']}")
                    ref.append(r)
                    bench.log(f"scikit-image {name}: {r['wall_s']:.3f} s")
                out = ps[0]["out"]
                same = (out["threshold"] == ref[0]["threshold"]
                        and out["n_objects"] == ref[0]["n_objects"])
                rows.append((name, ps, ref, out, same))
        finally:
            server.stop()
    print(f"Segmentation: Otsu + label + regionprops, {time.strftime('%Y-%m-%d')}, "
          f"median of {args.repeat}; `{' '.join(sys.argv)}`\n")
    print("| data | objects | pentascope time | scikit-image time | ratio (> 1: pentascope faster) | pentascope peak RSS | "
          "scikit-image peak RSS | same threshold and objects |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, ps, ref, out, same in rows:
        pt = bench.median([m["wall_s"] for m in ps])
        rt = bench.median([r["wall_s"] for r in ref])
        pk = max(m["peak_kib"] or 0 for m in ps)
        rk = max(r["peak_kib"] for r in ref)
        print(f"| {name} | {out['n_objects']} | {bench.fmt_t(pt)} | {bench.fmt_t(rt)} | "
              f"{bench.fmt_ratio(rt, pt)} | {bench.fmt_mib(pk)} | {bench.fmt_mib(rk)} | "
              f"{'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
