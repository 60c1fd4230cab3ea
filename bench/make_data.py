#!/usr/bin/env python3
"""Write the benchmark inputs: a uint16 TZCYX ImageJ hyperstack (smooth
structure plus noise, channels correlated), plane by plane so memory stays
small.

usage: make_data.py OUT.tif [--shape T Z C Y X] [--bigtiff] [--compression zstd|zlib]
"""
import argparse

import numpy as np
import tifffile


def planes(shape, seed):
    t, z, c, y, x = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, y, dtype=np.float32),
                         np.linspace(0, 1, x, dtype=np.float32), indexing="ij")
    for ti in range(t):
        for zi in range(z):
            # one structure per (t, z), seen by every channel with its own gain
            base = (np.sin((3 + ti * 0.1) * 3.1 * xx) * np.cos((2 + zi * 0.05) * 3.1 * yy)
                    + np.sin(9.0 * (xx + yy)))
            for ci in range(c):
                noise = rng.standard_normal((y, x), dtype=np.float32)
                v = 20000 + (6000 + 2000 * ci) * base + 1500 * noise
                yield np.clip(v, 0, 65535).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", type=int, nargs=5, default=[10, 20, 3, 1024, 1024])
    ap.add_argument("--bigtiff", action="store_true")
    ap.add_argument("--compression", default=None)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    shape = tuple(a.shape)
    kw = dict(shape=shape, dtype=np.uint16, photometric="minisblack")
    if a.compression:
        kw["compression"] = a.compression
    if a.bigtiff:
        # ImageJ hyperstacks cannot be BigTIFF: write OME-TIFF instead
        with tifffile.TiffWriter(a.out, bigtiff=True, ome=True) as w:
            w.write(planes(shape, a.seed), metadata={"axes": "TZCYX"}, **kw)
    else:
        with tifffile.TiffWriter(a.out, imagej=True) as w:
            w.write(planes(shape, a.seed), metadata={"axes": "TZCYX"}, **kw)


if __name__ == "__main__":
    main()
