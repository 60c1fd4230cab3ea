#!/usr/bin/env python3
"""The catalogue at scale: N tiny images imported with `pentascope ingest`
(realistic names, ~20 tags, ~50 annotation keys, 500 datasets, two owners),
then the latency of the queries a lab makes, on SQLite and on PostgreSQL.

    bench/catalogue.py [--images 100000] [--datasets 500] [--backend sqlite|postgres|both]
                       [--repeat 200] [--binary target/release/pentascope]

Prints the ingest rate (with --durability os, and the default sync on a
sample), p50/p99 of each query over --repeat runs, and the database size
per image. Needs a release binary; PostgreSQL at $PENTASCOPE_BENCH_POSTGRES
(default postgres://postgres@127.0.0.1:5432/test) for that backend.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAINS = ["DAPI", "GFP", "mCherry", "Cy5", "Alexa488", "Hoechst", "TRITC", "FITC"]
REGIONS = ["cortex", "hippocampus", "liver", "kidney", "retina", "spleen", "heart", "lung"]
TAGS = [f"{w}" for w in (
    "confocal widefield lightsheet timelapse zstack fixed live control treated "
    "replicate pilot published qc-passed qc-failed reimaged drift bleached "
    "tiled stitched deconvolved"
).split()]
KEYS = [f"Key{k:02d}" for k in range(42)] + [
    "Stain", "Mouse", "Objective", "Microscope", "Operator", "Protocol", "Slide", "Well"]


def tiny_tiff(seed: int) -> bytes:
    """A 16 × 12 uint8 single-page little-endian TIFF (one strip)."""
    width, height = 16, 12
    pixels = bytes((i * 7 + seed) & 0xFF for i in range(width * height))
    entries = [
        (256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
        (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, height),
        (279, 4, 1, len(pixels)),
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<H", value) + b"\x00\x00" if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + pixels
    return bytes(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Bench:
    def __init__(self, args: argparse.Namespace, backend: str, work: Path) -> None:
        self.args, self.backend, self.work = args, backend, work
        self.data = work / f"data-{backend}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PENTASCOPE_")}
        self.env["PENTASCOPE_DATA_DIR"] = str(self.data)
        self.env["RUST_LOG"] = "warn"
        if backend == "postgres":
            admin = os.environ.get("PENTASCOPE_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
            name = f"pentascope_bench_{os.getpid()}"
            subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
            self.env["DATABASE_URL"] = admin.rsplit("/", 1)[0] + "/" + name
            self.pg_admin, self.pg_name = admin, name

    def cli(self, *args: str) -> str:
        out = subprocess.run([self.args.binary, *args], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"pentascope {' '.join(args[:3])}… failed: {out.stderr[-2000:]}")
        return out.stdout

    def make_files(self, files: Path) -> list[tuple[Path, list[str]]]:
        """Folders of tiny files, one per dataset, with the ingest flags of each."""
        rng = random.Random(7)
        per = self.args.images // self.args.datasets
        batches = []
        for d in range(self.args.datasets):
            folder = files / f"d{d:04d}"
            folder.mkdir(parents=True)
            stain, region = rng.choice(STAINS), rng.choice(REGIONS)
            mouse = f"M{rng.randrange(1, 400)}"
            for i in range(per):
                name = f"{mouse}_{stain}_{region}_slide{d:04d}_{i:04d}.tif"
                (folder / name).write_bytes(tiny_tiff(i))
            flags = ["--dataset", f"{region.title()} study {d:04d}", "--owner", "alice" if d % 2 else "bob"]
            # ~30% of images carry "confocal"; 0.1% carry the rare word
            tags = rng.sample(TAGS[1:], 2) + (["confocal"] if rng.random() < 0.3 else [])
            for t in tags:
                flags += ["--tag", t]
            for key in rng.sample(KEYS[:-8], 4):
                flags += ["--annotation", f"{key}=v{rng.randrange(20)}"]
            flags += ["--annotation", f"Stain={stain}", "--annotation", f"Mouse={mouse}"]
            if d == 0:
                flags += ["--description", "zebrafishlarva pilot"]
            batches.append((folder, flags))
        return batches

    def ingest(self, batches: list[tuple[Path, list[str]]]) -> dict[str, float]:
        self.cli("user", "create", "alice")
        self.cli("user", "create", "bob")
        # the default durability (sync) on the first dataset
        started = time.perf_counter()
        folder, flags = batches[0]
        self.cli("ingest", str(folder), *flags)
        sync_rate = len(list(folder.iterdir())) / (time.perf_counter() - started)
        started = time.perf_counter()
        count = 0
        for folder, flags in batches[1:]:
            self.cli("ingest", str(folder), "--durability", "os", *flags)
            count += len(list(folder.iterdir()))
        os_rate = count / (time.perf_counter() - started)
        return {"sync": sync_rate, "os": os_rate}

    def serve(self, auth: str = "required") -> subprocess.Popen[str]:
        port = free_port()
        env = dict(self.env, PENTASCOPE_AUTH=auth, PORT=str(port))
        proc = subprocess.Popen([self.args.binary, "serve"], env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "listening on" in line:
                break
        self.base = f"http://127.0.0.1:{port}"
        return proc

    def get(self, path: str, key: str) -> dict:
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request) as resp:
            return json.loads(resp.read())

    def time(self, path: str, key: str) -> tuple[float, float, int]:
        self.get(path, key)  # warm
        samples = []
        for _ in range(self.args.repeat):
            started = time.perf_counter()
            doc = self.get(path, key)
            samples.append(1000 * (time.perf_counter() - started))
        return percentile(samples, 0.5), percentile(samples, 0.99), doc["count"]

    def size_per_image(self) -> float:
        if self.backend == "sqlite":
            size = sum(p.stat().st_size for p in self.data.glob("pentascope.sqlite*"))
        else:
            size = int(subprocess.run(
                ["psql", self.pg_admin, "-tAc", f"SELECT pg_database_size('{self.pg_name}')"],
                capture_output=True, text=True, check=True).stdout.strip())
        return size / self.args.images

    def run(self) -> None:
        files = self.work / f"files-{self.backend}"
        batches = self.make_files(files)
        print(f"[{self.backend}] importing {self.args.images} images in {len(batches)} datasets…", flush=True)
        rates = self.ingest(batches)
        shutil.rmtree(files)
        self.cli("user", "create", "root", "--admin")
        admin = self.cli("token", "create", "--user", "root", "--scope", "admin").strip()
        bob = self.cli("token", "create", "--user", "bob", "--scope", "read").strip()
        server = self.serve()
        try:
            # the cursor of page 500 (limit 100), walked to once
            cursor = None
            for _ in range(499):
                cursor = self.get("/images?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""), admin)["next_cursor"]
            # a dataset whose images carry the tag
            tagged = self.get("/images?limit=1&tag=confocal", admin)["images"][0]["image_id"]
            dataset = self.get(f"/images/{tagged}", admin)["datasets"][0]["dataset_id"]
            queries = [
                ("first page", "/images?limit=100", admin),
                ("page 500 by cursor", f"/images?limit=100&cursor={urllib.parse.quote(cursor)}", admin),
                ("q= a word in 0.2% (one dataset)", "/images?q=zebrafishlar", admin),
                ("q= a word in ~30%", "/images?q=confocal", admin),
                ("tag= + dataset=", f"/images?tag=confocal&dataset={dataset}", admin),
                ("annotation=", "/images?annotation=Stain%3DDAPI", admin),
                ("two users: bob's q= under access control", "/images?q=cortex", bob),
                ("GET /tags", "/tags", admin),
                ("GET /datasets?q=", "/datasets?q=cortex", admin),
            ]
            print(f"\n[{self.backend}] {self.args.images} images: ingest {rates['os']:.0f} images/s "
                  f"(--durability os), {rates['sync']:.0f} images/s (sync); "
                  f"database {self.size_per_image():.0f} bytes per image")
            print(f"| query | matches | p50 ms | p99 ms |\n| --- | --- | --- | --- |")
            for name, path, key in queries:
                p50, p99, count = self.time(path, key)
                print(f"| {name} | {count} | {p50:.1f} | {p99:.1f} |", flush=True)
        finally:
            server.terminate()
            server.wait()
        if self.args.browser:
            self.browser()
        if self.backend == "postgres":
            subprocess.run(["psql", self.pg_admin, "-qc", f"DROP DATABASE IF EXISTS {self.pg_name}"])

    def browser(self) -> None:
        """`/` in headless Chromium over the whole catalogue (tests/browser's
        driver): the time to the first screen with its thumbnails, a search
        typed, a tag chip, a dataset."""
        server = self.serve(auth="off")
        try:
            def count(query: str) -> int:
                with urllib.request.urlopen(self.base + "/images?limit=1&" + query) as resp:
                    return json.loads(resp.read())["count"]
            config = {
                "base": self.base, "shots": str(self.work / f"shots-{self.backend}"), "mode": "catalogue",
                "total": count(""), "word": "zebrafishla", "word_count": count("q=zebrafishla"),
                "tag": "confocal", "tag_count": count("tag=confocal"), "edit": "image_1",
            }
            Path(config["shots"]).mkdir(exist_ok=True)
            out = subprocess.run(["node", str(ROOT / "tests/browser/viewer.mjs"), json.dumps(config)],
                                 capture_output=True, text=True, cwd=ROOT / "tests/browser")
            for line in out.stdout.splitlines():
                print(f"[{self.backend}] chromium {line}")
            if out.returncode != 0:
                print(out.stderr[-3000:])
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--datasets", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--binary", default=str(ROOT / "target/release/pentascope"))
    parser.add_argument("--browser", action="store_true",
                        help="also time / in headless Chromium (needs tests/browser's npm ci and Debian's chromium)")
    args = parser.parse_args()
    if not Path(args.binary).is_file():
        sys.exit(f"{args.binary} is missing: cargo build --release -p pentascope")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory(prefix="pentascope-catalogue-") as work:
        for backend in backends:
            Bench(args, backend, Path(work)).run()


if __name__ == "__main__":
    main()
