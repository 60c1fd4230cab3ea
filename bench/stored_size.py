#!/usr/bin/env python3
"""Stored size of each image against its raw samples: pentascope's chunks
(the compression its --compression setting chose: blosc LZ4 or zstd with
byte or bit shuffle, zstd, or none) against the chunking pentascope used
before them (one zstd frame per plane, or per 2048-column tile of planes
over 16 MiB, zstd level 1 where a trial on the first plane saved at least
10%, else level -1), computed here with numcodecs on tifffile's array.

    .venv/bin/python bench/stored_size.py [--binary target/release/pentascope] FILE...

Imports the files with `pentascope ingest` into a temporary data
directory, then sums the bytes under each group's full-resolution array
`0/` (pyramid levels are reported apart). Prints a markdown table.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import zarr
from numcodecs import Zstd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def tree_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def previous_bytes(planes, dtype):
    """One zstd frame per plane (or 2048-column tile of a plane over
    16 MiB), at the level the old trial chose on the first plane."""
    codec = None
    total = 0
    for plane in planes:
        if codec is None:
            first = np.ascontiguousarray(plane).tobytes()
            codec = Zstd(1 if len(Zstd(1).encode(first)) * 10 <= len(first) * 9 else -1)
        plane = np.ascontiguousarray(plane)
        if plane.nbytes <= 16 << 20:
            total += len(codec.encode(plane.tobytes()))
        else:
            rows = max(1, min((8 << 20) // (2048 * dtype.itemsize), (64 << 20) // (plane.shape[1] * dtype.itemsize)))
            for y in range(0, plane.shape[0], rows):
                for x in range(0, plane.shape[1], 2048):
                    total += len(codec.encode(np.ascontiguousarray(plane[y:y + rows, x:x + 2048]).tobytes()))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "pentascope"))
    args = ap.parse_args()
    print("| file | dtype | raw | before (zstd per plane) | now | codec now | now / before | pyramid levels |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |")
    for path in args.files:
        with tempfile.TemporaryDirectory() as data:
            done = subprocess.run([args.binary, "ingest", "--data-dir", data, path],
                                  capture_output=True, text=True)
            groups = glob.glob(os.path.join(data, "images", "*.zarr"))
            if done.returncode != 0 or len(groups) != 1:
                continue
            group = groups[0]
            meta = json.load(open(os.path.join(group, "0", "zarr.json")))
            codecs = meta["codecs"]
            if codecs[0]["name"] == "sharding_indexed":
                codecs = codecs[0]["configuration"]["codecs"]
            codec = next((c for c in codecs if c["name"] != "bytes"), {"name": "none"})
            conf = codec.get("configuration", {})
            label = {"blosc": f"blosc {conf.get('cname')} {conf.get('shuffle')}",
                     "zstd": f"zstd {conf.get('level')}"}.get(codec["name"], codec["name"])
            now = tree_bytes(os.path.join(group, "0")) - os.path.getsize(os.path.join(group, "0", "zarr.json"))
            levels = len(json.load(open(os.path.join(group, "zarr.json")))["attributes"]["ome"]["multiscales"][0]["datasets"]) - 1
            shape = meta["shape"]
            dtype = np.dtype(meta["data_type"])
            # the stored array, plane by plane, as pentascope stored it
            z = zarr.open_array(os.path.join(group, "0"), mode="r")
            planes = (z[t, c, zz] for t in range(shape[0]) for c in range(shape[1]) for zz in range(shape[2]))
            before = previous_bytes(planes, dtype)
            raw = int(np.prod(shape)) * dtype.itemsize
            print(f"| {os.path.basename(path)} | {dtype} | {raw / 1e6:.2f} MB | {before / raw:.1%} | {now / raw:.1%} | {label} | {now / before:.2f} | {levels} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
