#!/usr/bin/env python3
"""The read paths of two (or more) pentascope binaries, side by side on one
file, the binaries alternating run after run so that both see the same
machine (other work on a shared machine skews any one run).

    .venv/bin/python bench/reads.py --data bench/out/structured_10x10x3x1024x1024_u16.tif \\
        --binary old=/path/to/old/pentascope --binary new=target/release/pentascope [--rounds 2]

Each run starts a fresh server, ingests the file (curl to published,
timed once) and measures, over HTTP: the statistics recompute (`/statistics?recompute=true`, best of
two), PCA with 2 components, 50 sequential random slices (median), random
slices at 32 connections (wrk, 10 s, when installed), 40 sequential random
full-resolution chunks by `/zarr` (median), the maximum projection over Z
of one channel to ~512 pixels (`/render?p=intmax`, median of five), three-channel
512² tiles at 32 connections (distinct tiles, so no cache answers), and
the PCA scores' chunks by `/zarr` (level 0 and the coarsest level, median
of ten each). The load average is printed with each run. Prints a markdown
table, one row per run.
"""
import argparse
import json
import os
import random
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from render import concurrent_rate, get, timed  # noqa: E402


def median(xs):
    return bench.median(xs)


def one_run(label, binary, path, dims, run_dir, seed):
    T, Z, C, Y, X = dims
    server = bench.Server(os.path.abspath(binary), os.path.join(run_dir, f"data-{label}"),
                          os.path.join(run_dir, f"server-{label}.log"))
    r = {"label": label, "load": os.getloadavg()[0]}
    try:
        started = time.perf_counter()
        image_id = bench.upload(server, path, os.path.join(run_dir, f"up-{label}.json"))["image_id"]
        r["ingest_s"] = time.perf_counter() - started
        rng = random.Random(seed)
        r["stats_s"] = min(timed(lambda: get(server, f"/statistics?image_id={image_id}&recompute=true"), 2))

        def pca():
            status, _, data = server.request(
                "POST", "/analyze", body=json.dumps({"image_id": image_id, "components": 2}),
                headers={"Content-Type": "application/json"})
            if status != 200:
                raise RuntimeError(f"/analyze: {status} {data[:200]!r}")
            return json.loads(data)
        t0 = time.perf_counter()
        scores = pca()["scores_image_id"]
        r["pca_s"] = time.perf_counter() - t0

        planes = [(rng.randrange(T), rng.randrange(Z), rng.randrange(C)) for _ in range(50)]
        it = iter(planes)
        get(server, f"/slice?image_id={image_id}&z=0&time=0&channel=0")
        r["slice_s"] = median(timed(lambda: get(server, "/slice?image_id={}&z={}&time={}&channel={}".format(
            image_id, *(lambda p: (p[1], p[0], p[2]))(next(it)))), len(planes)))
        if shutil.which("wrk"):
            args = argparse.Namespace(wrk_threads=2, wrk_connections=32, wrk_duration=10)
            w = bench.run_wrk(server, image_id, dims, args)
            r["wrk_rps"] = w.get("rps")
            r["wrk_errors"] = w.get("non2xx_or_socket_errors")

        chunks = iter([(rng.randrange(T), rng.randrange(C), rng.randrange(Z)) for _ in range(40)])
        r["zarr_chunk_s"] = median(timed(
            lambda: get(server, "/zarr/{}/0/c/{}/{}/{}/0/0".format(image_id, *next(chunks))), 40))

        meta = server.get_json(f"/images/{image_id}")[1]
        window = meta["rendering"]["channels"][0]["window"]
        widths = iter(range(500, 510))
        r["projection_s"] = median(timed(lambda: get(
            server, f"/render?image_id={image_id}&p=intmax&c=1|{window['start']}:{window['end']}$FFFFFF"
                    f"&size={next(widths)}"), 5))
        spec = ",".join(f"{i + 1}|{c['window']['start'] + 1}:{c['window']['end']}${h}" for i, (c, h) in
                        enumerate(zip(meta["rendering"]["channels"], ["FF0000", "00FF00", "0000FF"])))
        tiles = [f"/render?image_id={image_id}&time={t}&z={z}&tile=0,{col},{row}&c={spec}"
                 for t in range(T) for z in range(Z)
                 for col in range(-(-X // 512)) for row in range(-(-Y // 512))]
        rng.shuffle(tiles)
        r["tiles_rps"], r["tiles_errors"] = concurrent_rate(server, tiles[:400])

        group = server.get_json(f"/zarr/{scores}/zarr.json")[1]
        levels = len(group["attributes"]["ome"]["multiscales"][0]["datasets"])
        for name, level in (("scores_chunk0_s", 0), ("scores_top_s", levels - 1)):
            arr = server.get_json(f"/zarr/{scores}/{level}/zarr.json")[1]
            cy, cx = arr["chunk_grid"]["configuration"]["chunk_shape"][3:]
            n = (-(-arr["shape"][3] // cy), -(-arr["shape"][4] // cx))
            keys = iter([(rng.randrange(T), rng.randrange(2), rng.randrange(Z),
                          rng.randrange(n[0]), rng.randrange(n[1])) for _ in range(10)])
            r[name] = median(timed(lambda: get(
                server, "/zarr/{}/{}/c/{}/{}/{}/{}/{}".format(scores, level, *next(keys))), 10))
            r[name.replace("_s", "_shape")] = f"{cy}×{cx}, {levels} levels"
    finally:
        server.stop()
    r["load_after"] = os.getloadavg()[0]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--binary", action="append", required=True, help="LABEL=PATH")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    binaries = [b.split("=", 1) for b in args.binary]
    dims = tuple(bench.tiff_dims(args.data)[0])
    run_dir = os.path.join(HERE, "out", f"reads-{time.strftime('%Y%m%dT%H%M%S')}")
    os.makedirs(run_dir)
    rows = []
    for round_ in range(args.rounds):
        order = binaries if round_ % 2 == 0 else binaries[::-1]
        for label, binary in order:
            bench.cat_file(args.data)
            bench.log(f"round {round_ + 1}: {label}")
            row = one_run(f"{label}-{round_ + 1}", binary, args.data, dims, run_dir, args.seed + round_)
            bench.log(json.dumps(row))
            rows.append(row)
    with open(os.path.join(run_dir, "rows.json"), "w") as f:
        json.dump(rows, f, indent=1)
    ms = lambda s: f"{s * 1000:.1f}" if s is not None else "–"  # noqa: E731
    print(f"\nRead paths, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}, {os.path.basename(args.data)} "
          f"{'×'.join(map(str, dims))}, {os.cpu_count()} cores\n")
    print("| run | load avg (start → end) | ingest s | statistics recompute ms | PCA ms | slice median ms | "
          "slices wrk req/s (errors) | /zarr chunk ms | max projection ms | tiles 32 conn req/s (errors) | "
          "scores chunk level 0 ms | scores chunk top level ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        wrk = f"{r['wrk_rps']:.0f} ({r['wrk_errors']})" if r.get("wrk_rps") else "–"
        print(f"| {r['label']} | {r['load']:.1f} → {r['load_after']:.1f} | {r['ingest_s']:.2f} | "
              f"{ms(r['stats_s'])} | "
              f"{ms(r['pca_s'])} | {ms(r['slice_s'])} | {wrk} | {ms(r['zarr_chunk_s'])} | "
              f"{ms(r['projection_s'])} | {r['tiles_rps']:.0f} ({r['tiles_errors']}) | "
              f"{ms(r['scores_chunk0_s'])} ({r['scores_chunk0_shape']}) | "
              f"{ms(r['scores_top_s'])} ({r['scores_top_shape']}) |")


if __name__ == "__main__":
    main()
