#!/usr/bin/env python3
"""One large job on many workers: a PCA and a statistics recompute of one
image, run by one single-thread `pentascope worker` and then by two (each
with one thread, `RAYON_NUM_THREADS=1`), through Redis as Celery sends
them. Prints the wall times, the speed-up, and whether the two runs gave
the same result bit for bit.

    .venv/bin/python bench/split.py --binary target/release/pentascope \\
        --data bench/out/hyperstack_u16.tif [--redis redis://127.0.0.1:6379/0]

The image is uploaded once to a `pentascope serve` (embedded SQLite, local
pixels) whose data directory the workers share, and read once untimed. Tasks are pushed on a
fresh queue in Celery's message protocol (as `app.send_task` does) and
followed with `GET /jobs/{id}`. Needs Redis; prints a markdown table.
"""
import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import Server, upload  # noqa: E402


def resp_command(url, *args):
    """One Redis command over RESP (no client library needed)."""
    u = urllib.parse.urlparse(url)
    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=10) as s:
        db = (u.path or "/0").strip("/") or "0"
        for cmd in (("SELECT", db), args):
            out = f"*{len(cmd)}\r\n".encode()
            for a in cmd:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            reply = s.recv(65536)
            if reply.startswith(b"-"):
                raise RuntimeError(f"redis: {reply.decode().strip()}")
        return reply


def send_task(redis_url, queue, task, kwargs):
    """Pushes a Celery protocol v2 message, as `app.send_task` does."""
    task_id = str(uuid.uuid4())
    body = [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    message = {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": task_id, "root_id": task_id,
                    "parent_id": None, "group": None, "retries": 0},
        "properties": {"correlation_id": task_id, "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": queue},
                       "priority": 0, "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4())},
    }
    resp_command(redis_url, "LPUSH", queue, json.dumps(message))
    return task_id


def wait_job(server, task_id, timeout=3600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job = server.get_json(f"/jobs/{task_id}")
        if status == 200 and job["state"] == "SUCCESS":
            return job["result"]
        if status == 200 and job["state"] == "FAILURE":
            raise RuntimeError(f"job failed: {job}")
        time.sleep(0.05)
    raise RuntimeError("job did not finish")


def start_workers(binary, data_dir, env, n, log_dir):
    procs = []
    for i in range(n):
        log = os.path.join(log_dir, f"worker-{n}-{i}.log")
        procs.append((subprocess.Popen(
            [binary, "worker", "--data-dir", data_dir], env=env,
            stdout=subprocess.DEVNULL, stderr=open(log, "wb")), log))
    deadline = time.time() + 60
    while not all("worker ready" in open(log).read() for _, log in procs):
        if time.time() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.05)
    return procs


def stop(procs):
    for p, _ in procs:
        p.terminate()
    for p, _ in procs:
        p.wait()


def run(args, server, data_dir, image_id, run_dir, workers):
    queue = f"pentascope-bench-split-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, CELERY_BROKER_URL=args.redis, PENTASCOPE_CELERY_QUEUE=queue,
               RAYON_NUM_THREADS="1", PENTASCOPE_JOB_RUNNERS="1", NO_COLOR="1")
    procs = start_workers(args.binary, data_dir, env, workers, run_dir)
    out = {}
    try:
        for name, task, kwargs in (
            ("pca", "heavy_pca", {"image_id": image_id, "n_components": 3}),
            ("statistics", "heavy_statistics", {"image_id": image_id}),
        ):
            t0 = time.perf_counter()
            result = wait_job(server, send_task(args.redis, queue, task, kwargs))
            out[name] = (time.perf_counter() - t0, result)
    finally:
        stop(procs)
        resp_command(args.redis, "DEL", queue)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "target", "release", "pentascope"))
    ap.add_argument("--data", required=True, help="the TIFF to analyse")
    ap.add_argument("--redis", default=os.environ.get("PENTASCOPE_BENCH_REDIS", "redis://127.0.0.1:6379/0"))
    args = ap.parse_args()
    try:
        resp_command(args.redis, "PING")
    except OSError as e:
        print(f"\n### One job on many workers\n\nnot measured: Redis is not reachable at {args.redis} ({e})\n")
        return
    run_dir = tempfile.mkdtemp(prefix="pentascope-bench-split-")
    data_dir = os.path.join(run_dir, "data")
    server = Server(args.binary, data_dir, os.path.join(run_dir, "server.log"),
                    extra_env={"CELERY_BROKER_URL": args.redis})
    try:
        image_id = upload(server, args.data, os.path.join(run_dir, "upload.json"))["image_id"]
        # one untimed pass over the stored image, so that both runs start
        # from the same page cache
        server.request("GET", f"/statistics?image_id={image_id}&recompute=true")
        one = run(args, server, data_dir, image_id, run_dir, 1)
        two = run(args, server, data_dir, image_id, run_dir, 2)
    finally:
        server.stop()
    print("\n### One job on many workers (each worker one thread)\n")
    print(f"`{os.path.basename(args.data)}`, {os.path.getsize(args.data) / 1e9:.2f} GB; "
          "tasks pushed on Redis as Celery sends them, split into part tasks over "
          "chunk ranges, merged by the worker that finishes last.\n")
    print("| Job | 1 worker × 1 thread | 2 workers × 1 thread | Speed-up | Same result |")
    print("|---|---|---|---|---|")
    for name, label in (("pca", "PCA (3 components)"), ("statistics", "Statistics recompute")):
        (t1, r1), (t2, r2) = one[name], two[name]
        if name == "pca":
            keys = ("explained_variance", "explained_variance_ratio", "components", "mean")
            same = all(r1[k] == r2[k] for k in keys)
        else:
            same = r1 == r2
        print(f"| {label} | {t1:.2f} s | {t2:.2f} s | {t1 / t2:.2f}× | "
              f"{'yes, bit for bit' if same else 'NO'} |")
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
