#!/usr/bin/env python3
"""Write the benchmark inputs: a uint16 TZCYX hyperstack (ImageJ, or OME
BigTIFF with --bigtiff), plane by plane so memory stays small.

- `--kind noise` (the default, the file of the earlier runs): one smooth
  structure per (t, z) seen by every channel with its own gain, under
  Gaussian noise with sigma = 1500 (12.6 bits of entropy in every 16: near
  incompressible).
- `--kind structured` (the headline data since issue 24: what microscopes
  write): each channel a sum of smooth sinusoids of its own (a few cycles
  across the plane, drifting with t and z), plus camera-like Gaussian noise
  of sigma `--noise` (default 300).

usage: make_data.py OUT.tif [--shape T Z C Y X] [--kind noise|structured]
                    [--noise SIGMA] [--bigtiff] [--compression zstd|zlib] [--seed N]
"""
import argparse

import numpy as np
import tifffile


def noise_planes(shape, seed):
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


# sinusoids per channel, and their amplitudes: their sum (9000) under the
# offsets (10500-14000) keeps samples above 1500 before noise, unclipped
WAVES = 4
AMPLITUDES = np.array([4000, 2500, 1500, 1000], dtype=np.float32)


def structured_planes(shape, seed, sigma):
    t, z, c, y, x = shape
    rng = np.random.default_rng(seed)
    ys = np.linspace(0, 1, y, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, x, dtype=np.float32)[None, :]
    # per channel and wave: cycles across the plane along y and x (0.5-6),
    # a phase, and how fast the phase drifts with t and with z
    freq = rng.uniform(0.5, 6.0, size=(c, WAVES, 2)).astype(np.float32) * (2 * np.pi)
    phase = rng.uniform(0, 2 * np.pi, size=(c, WAVES)).astype(np.float32)
    drift = rng.uniform(0.05, 0.4, size=(c, WAVES, 2)).astype(np.float32)
    offset = rng.uniform(10500, 14000, size=c).astype(np.float32)
    for ti in range(t):
        for zi in range(z):
            for ci in range(c):
                v = np.full((y, x), offset[ci], dtype=np.float32)
                for k in range(WAVES):
                    p = phase[ci, k] + drift[ci, k, 0] * ti + drift[ci, k, 1] * zi
                    # sin(a·y + b·x + p) from two separable outer products
                    ay = freq[ci, k, 0] * ys + p
                    bx = freq[ci, k, 1] * xs
                    v += AMPLITUDES[k] * (np.sin(ay) * np.cos(bx) + np.cos(ay) * np.sin(bx))
                v += sigma * rng.standard_normal((y, x), dtype=np.float32)
                yield np.clip(np.rint(v), 0, 65535).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", type=int, nargs=5, default=[10, 20, 3, 1024, 1024])
    ap.add_argument("--kind", choices=["noise", "structured"], default="noise")
    ap.add_argument("--noise", type=float, default=300.0,
                    help="sigma of the Gaussian noise of --kind structured")
    ap.add_argument("--bigtiff", action="store_true")
    ap.add_argument("--compression", default=None)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    shape = tuple(a.shape)
    if any(n < 1 for n in shape) or shape[3] * shape[4] > 1 << 28:
        raise SystemExit(f"--shape must be positive with planes of at most 2^28 pixels, got {shape}")
    planes = (structured_planes(shape, a.seed, a.noise) if a.kind == "structured"
              else noise_planes(shape, a.seed))
    kw = dict(shape=shape, dtype=np.uint16, photometric="minisblack")
    if a.compression:
        kw["compression"] = a.compression
    if a.bigtiff:
        # ImageJ hyperstacks cannot be BigTIFF: write OME-TIFF instead
        with tifffile.TiffWriter(a.out, bigtiff=True, ome=True) as w:
            w.write(planes, metadata={"axes": "TZCYX"}, **kw)
    else:
        with tifffile.TiffWriter(a.out, imagej=True) as w:
            w.write(planes, metadata={"axes": "TZCYX"}, **kw)


if __name__ == "__main__":
    main()
