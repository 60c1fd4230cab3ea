#!/usr/bin/env python3
"""Rendering benchmark: what a viewer asks for, pentascope (release server,
`GET /render` and `/thumbnail` over HTTP) against the Python path a Flask
service would take per request (tifffile reads the planes it needs from the
TIFF, NumPy windows and composites, Pillow resizes and encodes the PNG), on
the same files, in one run.

    .venv/bin/python bench/render.py [--binary target/release/pentascope]

Inputs (made under bench/out/ with tifffile, reused when present): a
20 x 3 x 2048 x 2048 uint16 ImageJ hyperstack (Z, C, Y, X) of smoothed
noise, and the corpus's 9600 x 9600 uint16 EM plane. Rows:

- a 512 x 512 three-channel composite tile (level 0) at random positions:
  p50 and p99 of one request after another, then requests per second with
  32 concurrent connections (distinct tiles, so the cache does not answer);
- a thumbnail (256 pixels, middle Z; each request a new image size so it is
  computed);
- a 1024 x 1024 region of the 9600 x 9600 plane resized to 512;
- a maximum projection over the 20 Z planes of one channel's 2048 x 2048
  plane, resized to 512.

The Python path renders the same pictures with the same definitions
(window, colour sum, clamp, box resize), reading with tifffile's
`imread(key=...)` per request, as a service without a store would. Prints
a markdown table.
"""
import argparse
import concurrent.futures
import http.client
import io
import os
import random
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

OUT = os.path.join(HERE, "out")
FIXTURES = os.environ.get(
    "PENTASCOPE_FIXTURES", os.path.join(HERE, "..", "..", "shared", "fixtures"))
EM = os.path.join(FIXTURES, "real", "em_9600x9600_deflate_rps1_u16.tif")
Z, C, S = 20, 3, 2048
COLORS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.float64)


def make_stack(path):
    if os.path.exists(path):
        return
    import tifffile
    from scipy import ndimage
    rng = np.random.default_rng(3)
    data = np.empty((Z, C, S, S), np.uint16)
    for c in range(C):
        field = ndimage.gaussian_filter(rng.standard_normal((Z, S, S), dtype=np.float32), 6)
        field = (field - field.min()) / (field.max() - field.min())
        data[:, c] = (field * 40000 + 1000 * c).astype(np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX"})


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def composite(planes, windows):
    """planes: C x H x W; the specified composite in 8 bits."""
    rgb = np.zeros(planes.shape[1:] + (3,))
    for plane, (start, end), color in zip(planes, windows, COLORS):
        v = np.clip((plane.astype(np.float64) - start) / (end - start), 0, 1)
        rgb += v[..., None] * color / 255
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def png(array, size=None):
    from PIL import Image
    image = Image.fromarray(array)
    if size is not None:
        image = image.resize(size, Image.BOX)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def python_tile(path, z, x, y, windows):
    import tifffile
    planes = np.stack([tifffile.imread(path, key=z * C + c)[y:y + 512, x:x + 512]
                       for c in range(C)])
    return png(composite(planes, windows))


def python_thumbnail(path, windows, size):
    import tifffile
    planes = np.stack([tifffile.imread(path, key=(Z // 2) * C + c) for c in range(C)])
    return png(composite(planes, windows), (size, size))


def python_region(window):
    import tifffile
    plane = tifffile.imread(EM)[4000:5024, 3000:4024]
    v = np.clip((plane.astype(np.float64) - window[0]) / (window[1] - window[0]), 0, 1)
    return png(np.round(np.repeat(v[..., None], 3, axis=2) * 255).astype(np.uint8), (512, 512))


def python_projection(path, window):
    import tifffile
    stack = np.stack([tifffile.imread(path, key=z * C) for z in range(Z)])
    plane = stack.max(axis=0)
    v = np.clip((plane.astype(np.float64) - window[0]) / (window[1] - window[0]), 0, 1)
    return png(np.round(np.repeat(v[..., None], 3, axis=2) * 255).astype(np.uint8), (512, 512))


def timed(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def get(server, path):
    status, ctype, body = server.request("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return body


def concurrent_rate(server, paths, connections=32):
    def fetch(path):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=600)
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        statuses = list(pool.map(fetch, paths))
    wall = time.perf_counter() - t0
    return len(paths) / wall, sum(s != 200 for s in statuses)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "target", "release", "pentascope"))
    ap.add_argument("--requests", type=int, default=60)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    stack = os.path.join(OUT, "render_20x3x2048x2048_u16.tif")
    make_stack(stack)
    run_dir = os.path.join(OUT, f"render-{int(time.time())}")
    server = bench.Server(os.path.abspath(args.binary), os.path.join(run_dir, "data"),
                          os.path.join(run_dir, "server.log"))
    try:
        stack_id = bench.upload(server, stack, os.path.join(run_dir, "up1.json"))["image_id"]
        em_id = bench.upload(server, EM, os.path.join(run_dir, "up2.json"))["image_id"]
        meta = bench.Server.get_json(server, f"/images/{stack_id}")[1]
        windows = [(c["window"]["start"], c["window"]["end"]) for c in meta["rendering"]["channels"]]
        em_meta = bench.Server.get_json(server, f"/images/{em_id}")[1]
        em_window = (em_meta["rendering"]["channels"][0]["window"]["start"],
                     em_meta["rendering"]["channels"][0]["window"]["end"])
        c_spec = ",".join(f"{i + 1}|{a}:{b}${h}" for i, ((a, b), h) in
                          enumerate(zip(windows, ["FF0000", "00FF00", "0000FF"])))
        rng = random.Random(5)
        every_tile = [(z, col, row) for z in range(Z) for col in range(4) for row in range(4)]
        tiles = rng.sample(every_tile, args.requests)
        tile_paths = iter([f"/render?image_id={stack_id}&z={z}&tile=0,{col},{row}&c={c_spec}"
                           for z, col, row in tiles])
        rows = []

        p_tile = timed(lambda: get(server, next(tile_paths)), args.requests)
        py_tiles = iter(tiles)

        def py_tile():
            z, col, row = next(py_tiles)
            python_tile(stack, z, col * 512, row * 512, windows)
        y_tile = timed(py_tile, args.requests)
        rows.append(("512×512 3-channel composite tile, p50", percentile(p_tile, .5), percentile(y_tile, .5)))
        rows.append(("512×512 3-channel composite tile, p99", percentile(p_tile, .99), percentile(y_tile, .99)))

        # another window, so that none of these is in the cache
        c_other = ",".join(f"{i + 1}|{a + 1}:{b}${h}" for i, ((a, b), h) in
                           enumerate(zip(windows, ["FF0000", "00FF00", "0000FF"])))
        fresh = [f"/render?image_id={stack_id}&z={z}&tile=0,{col},{row}&c={c_other}"
                 for z, col, row in every_tile]
        rate, errors = concurrent_rate(server, fresh)

        sizes = iter(range(256, 256 + 10))
        p_thumb = timed(lambda: get(server, f"/thumbnail?image_id={stack_id}&size={next(sizes)}"), 10)
        y_thumb = timed(lambda: python_thumbnail(stack, windows, 256), 10)
        rows.append(("thumbnail (256 px, middle Z, 3 channels of 2048²)", percentile(p_thumb, .5), percentile(y_thumb, .5)))

        regions = iter(range(10))
        p_region = timed(lambda: get(server, f"/render?image_id={em_id}&region={4000 + next(regions)},5000,1024,1024&size=512"), 10)
        y_region = timed(lambda: python_region(em_window), 3)
        rows.append(("1024² region of the 9600² plane → 512²", percentile(p_region, .5), percentile(y_region, .5)))

        widths = iter(range(500, 510))
        p_proj = timed(lambda: get(server, f"/render?image_id={stack_id}&p=intmax&c=1|{windows[0][0]}:{windows[0][1]}$FFFFFF&size={next(widths)}"), 5)
        y_proj = timed(lambda: python_projection(stack, windows[0]), 3)
        rows.append(("max projection over 20 Z planes of 2048², → ~512²", percentile(p_proj, .5), percentile(y_proj, .5)))

        print(f"\nRendering, {time.strftime('%Y-%m-%dT%H:%M:%S%z')} ({os.cpu_count()} cores)\n")
        print("| request | pentascope | Python (tifffile + NumPy + Pillow) | ratio |")
        print("| --- | ---: | ---: | ---: |")
        for name, p, y in rows:
            print(f"| {name} | {p * 1000:.1f} ms | {y * 1000:.1f} ms | {y / p:.1f}× |")
        print(f"| 512×512 composite tiles, 32 connections, {len(fresh)} distinct tiles | "
              f"{rate:.0f} req/s, {errors} errors | | |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
