#!/usr/bin/env python3
"""Side-by-side benchmark driver: pentascope (release server over HTTP) against
the Python reference stack (tifffile, numpy, scikit-learn, Pillow), on the same
files, in one run, printing one markdown table.

Normally started by bench/run.sh (which builds the binary, prepares the venv
and the data); it can be run on its own with the venv's python:

    .venv/bin/python bench/bench.py --data main=bench/out/quick_u16.tif [--data ...]

Progress goes to stderr, the report to stdout and to bench/out/run-*/report.md.
See BENCHMARKS.md for what every row means.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import random
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
MB = 1e6      # throughput: decimal megabytes of the uncompressed image per second
MiB = 2 ** 20  # memory: MiB
MIN_CPU_WALL = 0.25  # seconds: shorter operations get no CPU-use figure (tick-based CPU time only)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc helpers

def read_hwm_kib(pid="self"):
    """VmHWM (peak resident set) of a process, KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def reset_hwm(pid="self"):
    """Reset VmHWM to the current RSS (writing 5 to clear_refs; needs the right
    to write there, e.g. root or the same user). Returns whether it worked."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid):
    """CPU time (user + system, all threads, exited ones included) of a process,
    seconds: from its CPU-time clock (clock_getcpuclockid), nanosecond
    resolution; else from /proc/<pid>/stat in clock ticks."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the process
    except OSError:
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_clock_precise(pid):
    try:
        time.clock_gettime(((~pid) << 3) | 2)
        return True
    except OSError:
        return False


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


# ------------------------------------------------------------ reference steps
# Each step runs as `bench.py child STEP ...` in its own process, prints one
# JSON line, and reports its own peak RSS (VmHWM, reset per phase).

def child_main(argv):
    ap = argparse.ArgumentParser(prog="bench.py child")
    ap.add_argument("step", choices=["imread", "stats", "persist", "pca", "slice"])
    ap.add_argument("path")
    ap.add_argument("--dims", type=int, nargs=5, required=True)  # T Z C Y X
    ap.add_argument("--as-limit", type=int, default=0)           # RLIMIT_AS bytes
    ap.add_argument("--planes", default="")                      # "t,z,c;t,z,c;..."
    ap.add_argument("--zarr-dir", default="")                    # persist: where to write
    a = ap.parse_args(argv)
    if a.as_limit:
        # fail with MemoryError instead of pushing the machine into the OOM killer
        resource.setrlimit(resource.RLIMIT_AS, (a.as_limit, a.as_limit))
    import numpy as np
    import tifffile

    T, Z, C, Y, X = a.dims
    res = {"step": a.step}
    peaks = {}

    def phase_end(name):
        peaks[name] = read_hwm_kib()
        reset_hwm()

    reset_hwm()
    if a.step == "imread":
        t0 = time.perf_counter()
        arr = tifffile.imread(a.path).reshape(T, Z, C, Y, X)
        res["imread_s"] = time.perf_counter() - t0
        phase_end("imread")
        t0 = time.perf_counter()
        total = int(arr.sum())
        res["sum_s"] = time.perf_counter() - t0
        res["sum"] = total
        phase_end("sum")
        res["nbytes"] = arr.nbytes
    elif a.step == "stats":
        t0 = time.perf_counter()
        arr = tifffile.imread(a.path).reshape(T, Z, C, Y, X)
        t1 = time.perf_counter()
        phase_end("imread")
        mean, std, mn, mx = [], [], [], []
        for c in range(C):
            v = arr[:, :, c]
            mean.append(float(v.mean()))   # float64 accumulation (numpy default for ints)
            std.append(float(v.std()))     # population std, float64
            mn.append(float(v.min()))
            mx.append(float(v.max()))
        t2 = time.perf_counter()
        phase_end("stats")
        res.update(imread_s=t1 - t0, stats_s=t2 - t1, total_s=t2 - t0,
                   mean=mean, std=std, min=mn, max=mx)
    elif a.step == "persist":
        # what a Python service that keeps what it is sent does: imread,
        # numpy statistics, the array written with zarr-python (zstd level
        # 1, one plane per chunk) and synced to disk
        import zarr
        from zarr.codecs import ZstdCodec
        t0 = time.perf_counter()
        arr = tifffile.imread(a.path).reshape(T, Z, C, Y, X)
        t1 = time.perf_counter()
        phase_end("imread")
        for c in range(C):
            v = arr[:, :, c]
            float(v.mean()), float(v.std()), float(v.min()), float(v.max())
        t2 = time.perf_counter()
        phase_end("stats")
        z = zarr.create_array(store=a.zarr_dir, shape=arr.shape, dtype=arr.dtype,
                              chunks=(1, 1, 1, Y, X), compressors=ZstdCodec(level=1))
        z[...] = arr
        os.sync()
        t3 = time.perf_counter()
        phase_end("write")
        stored = sum(os.path.getsize(os.path.join(d, f))
                     for d, _, fs in os.walk(a.zarr_dir) for f in fs)
        res.update(imread_s=t1 - t0, stats_s=t2 - t1, write_s=t3 - t2, total_s=t3 - t0,
                   stored_bytes=stored)
    elif a.step == "pca":
        from sklearn.decomposition import PCA
        t0 = time.perf_counter()
        arr = tifffile.imread(a.path).reshape(T, Z, C, Y, X)
        t1 = time.perf_counter()
        phase_end("imread")
        Xm = np.moveaxis(arr, 2, -1).reshape(-1, C)   # (T*Z*Y*X) x C, pixels x channels
        pca = PCA(n_components=2)
        scores = pca.fit_transform(Xm)
        t2 = time.perf_counter()
        phase_end("pca")
        res.update(imread_s=t1 - t0, pca_s=t2 - t1, total_s=t2 - t0,
                   explained_variance=[float(x) for x in pca.explained_variance_],
                   explained_variance_ratio=[float(x) for x in pca.explained_variance_ratio_],
                   n_samples=int(scores.shape[0]))
    elif a.step == "slice":
        import io
        from PIL import Image
        times = []
        for spec in a.planes.split(";"):
            t, z, c = (int(x) for x in spec.split(","))
            i = (t * Z + z) * C + c
            t0 = time.perf_counter()
            with tifffile.TiffFile(a.path) as tf:
                p = tf.pages[i].asarray()
            lo, hi = np.percentile(p, [0.1, 99.9])
            scale = 255.0 / (hi - lo) if hi > lo else 0.0
            u8 = np.clip((p.astype(np.float64) - lo) * scale, 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(u8).save(buf, "PNG")
            times.append(time.perf_counter() - t0)
        phase_end("slice")
        res["times_s"] = times
        res["png_bytes_last"] = buf.tell()
    res["peak_kib"] = peaks
    res["overall_peak_kib"] = max(v for v in peaks.values() if v is not None)
    print("CHILD_JSON " + json.dumps(res), flush=True)


def run_child(step, path, dims, as_limit, planes=None, timeout=None, zarr_dir=None):
    """Run one reference step in its own process; returns its JSON result, or
    {"error": ...}."""
    cmd = [sys.executable, os.path.abspath(__file__), "child", step, path,
           "--dims", *map(str, dims), "--as-limit", str(as_limit)]
    if planes:
        cmd += ["--planes", ";".join(f"{t},{z},{c}" for t, z, c in planes)]
    if zarr_dir:
        cmd += ["--zarr-dir", zarr_dir]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    for line in p.stdout.splitlines():
        if line.startswith("CHILD_JSON "):
            r = json.loads(line[len("CHILD_JSON "):])
            r["process_wall_s"] = wall
            return r
    err = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {p.returncode}: {err[:200]}"}


# ------------------------------------------------------------ pentascope side

class Server:
    """A `pentascope serve` process on a free port with its own data dir."""

    def __init__(self, binary, data_dir, log_path, extra_env=None, drop_env=()):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        os.makedirs(data_dir, exist_ok=True)
        env = dict(os.environ)  # PENTASCOPE_* (and RUST_LOG) pass through
        for k in drop_env:
            env.pop(k, None)
        env.update(extra_env or {})
        env.setdefault("NO_COLOR", "1")  # plain server log file
        self.env = env
        self.argv = [binary, "serve", "--host", "127.0.0.1", "--port", "0",
                     "--data-dir", data_dir]
        self.logf = open(log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.logf,
                                     env=env, start_new_session=True)
        self.pid = self.proc.pid
        line = self._readline(timeout=60)
        m = re.search(r"listening on http://([\d.]+):(\d+)", line or "")
        if not m:
            self.stop()
            raise RuntimeError(f"server did not start (stdout: {line!r}); see {log_path}")
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = f"http://{self.host}:{self.port}"
        self.hwm_resettable = reset_hwm(self.pid)
        self.cpu_precise = cpu_clock_precise(self.pid)
        self.conn = None
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        """Keep the server's stdout pipe from filling up."""
        try:
            while os.read(self.proc.stdout.fileno(), 65536):
                pass
        except (OSError, ValueError):
            pass

    def _readline(self, timeout):
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.time() + timeout
        while time.time() < deadline and b"\n" not in buf:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
            elif self.proc.poll() is not None:
                break
        return buf.decode(errors="replace").strip()

    # -- HTTP on one persistent connection
    def request(self, method, path, body=None, headers=None, timeout=7200):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, resp.getheader("Content-Type", ""), data
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get_json(self, path):
        status, _, data = self.request("GET", path)
        return status, json.loads(data or b"null")

    # -- measurement around one operation: wall time, this op's peak RSS, CPU
    def measure(self, fn):
        self.reset()
        c0 = cpu_seconds(self.pid)
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(self.pid) - c0
        # with only clock ticks (10 ms) the figure means nothing for short operations
        min_wall = 0.01 if self.cpu_precise else MIN_CPU_WALL
        return {"wall_s": wall, "peak_kib": read_hwm_kib(self.pid),
                "cores": cpu / wall if wall >= min_wall else None, "out": out}

    def reset(self):
        if self.hwm_resettable:
            reset_hwm(self.pid)

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def upload(server, path, resp_path):
    """Ingest with curl (so the client is not Python-limited), timed by the
    caller from start to the JSON response."""
    cmd = ["curl", "-sS", "-H", "Expect:", "-o", resp_path, "-w", "%{http_code}",
           "-F", f"file=@{path}", f"{server.url}/upload"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    code = p.stdout.strip()
    try:
        with open(resp_path) as f:
            body = json.load(f)
    except (OSError, ValueError):
        body = {"error": f"unparseable response; curl: {p.stderr.strip()[:200]}"}
    if not code.startswith("2") or "image_id" not in body:
        raise RuntimeError(f"upload failed: HTTP {code} {body}")
    return body


def upload_log_times(log_path):
    """Best effort: the server's own upload timings from its log (the last
    'upload received ... seconds=' and 'upload published ... seconds=')."""
    try:
        with open(log_path, errors="replace") as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
    except OSError:
        return {}
    out = {}
    for key, pat in (("received_s", r"upload received.*?seconds=([\d.]+)"),
                     ("published_s", r"upload published.*?seconds=([\d.]+)")):
        found = re.findall(pat, text)
        if found:
            out[key] = float(found[-1])
    return out


def statistics_recompute_supported(server):
    """Whether the server knows /statistics?recompute=: it is documented in
    /openapi.json, or an invalid value (recompute=maybe) is rejected with 400
    (a server that ignores the parameter answers 200)."""
    try:
        status, doc = server.get_json("/openapi.json")
        if status == 200:
            item = doc["paths"]["/statistics"]
            text = json.dumps(item)
            for ref in re.findall(r'"\$ref": "#/components/parameters/([^"]+)"', text):
                text += json.dumps(doc.get("components", {}).get("parameters", {}).get(ref, {}))
            if "recompute" in text:
                return True
    except Exception:  # noqa: BLE001
        pass
    try:
        status, _ = server.get_json("/statistics?image_id=image_1&recompute=maybe")
        return status == 400
    except Exception:  # noqa: BLE001
        return False


def server_settings(binary, env, given):
    """Effective settings of `pentascope serve`, read from its --help (options,
    env variables, defaults), the environment it gets and the options given."""
    try:
        text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True,
                              env=env, timeout=10).stdout
    except Exception:  # noqa: BLE001
        return []
    out = []
    pat = re.compile(r"--([a-z0-9-]+) <[^>]+>((?:(?!\n\s+-).)*?)\[env: ([A-Z0-9_]+)=[^\]]*\]"
                     r"(?: \[default: ([^\]]*)\])?", re.S)
    for m in pat.finditer(text):
        name, var, default = m.group(1), m.group(3), m.group(4)
        if name in given:
            out.append((name, given[name], "option"))
        elif var in env:
            out.append((name, env[var], f"env {var}"))
        else:
            out.append((name, default, "default"))
    return out


def op_statistics_recompute(server, image_id, plain_keys):
    """GET /statistics?recompute=true; returns (row dict, values) with na set if
    the server rejects or ignores the parameter."""
    m = server.measure(lambda: server.get_json(
        f"/statistics?image_id={image_id}&recompute=true"))
    status, body = m["out"]
    m["status"] = status
    if status != 200:
        m["na"] = f"HTTP {status}: {str(body.get('error') if isinstance(body, dict) else body)[:80]}"
    elif not statistics_recompute_supported(server):
        m["na"] = "recompute=true not supported (ignored, answered from the database)"
    if status == 200 and set(body) != set(plain_keys):
        m["note"] = "response keys differ from the plain /statistics"
    m["body"] = body if status == 200 else None
    return m


def guarded(server, tag, name, fn):
    """Run one operation; a failure becomes {"error": ...} so that the run
    goes on and the table shows what failed."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        msg = f"{e.__class__.__name__}: {e}"[:300]
        if server.proc.poll() is not None:
            msg += f" (server exited with code {server.proc.returncode}; see {server.log_path})"
        log(f"[{tag}] {name} FAILED: {msg}")
        return {"error": msg}


def pentascope_ops(server, path, dims, nbytes, args, run_dir, tag, full=True):
    """Ingest, statistics (recompute and database), PCA, slices, wrk.
    Returns a dict of measurements (an operation that failed holds "error")."""
    T, Z, C, Y, X = dims
    r = {"nbytes": nbytes}
    log(f"[{tag}] ingest {os.path.basename(path)} ({nbytes / MB:.1f} MB) via curl")

    def ingest():
        m = server.measure(lambda: upload(server, path, os.path.join(run_dir, f"upload-{tag}.json")))
        m["server_log"] = upload_log_times(server.log_path)
        return m
    r["ingest"] = guarded(server, tag, "ingest", ingest)
    if "error" in r["ingest"]:
        for k in ("stats_db", "stats_recompute", "pca") + (("slice", "wrk") if full else ()):
            r[k] = {"error": "no image (ingest failed)"}
        r["stats_db_body"] = {}
        return r
    image_id = r["ingest"]["out"]["image_id"]
    r["image_id"] = image_id
    r["stored"] = guarded(server, tag, "stored size and dd",
                          lambda: stored_and_dd(server, image_id, path, run_dir))

    log(f"[{tag}] statistics (database), {args.stat_requests} requests")
    plain = {}

    def db_stats():
        def go():
            times = []
            for _ in range(args.stat_requests):
                t0 = time.perf_counter()
                status, body = server.get_json(f"/statistics?image_id={image_id}")
                times.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"/statistics: HTTP {status} {body}")
                plain.update(body)
            return times
        m = server.measure(go)
        m["median_s"] = median(m["out"])
        return m
    r["stats_db"] = guarded(server, tag, "statistics (database)", db_stats)
    r["stats_db_body"] = dict(plain)

    log(f"[{tag}] statistics (recompute=true)")
    r["stats_recompute"] = guarded(server, tag, "statistics (recompute)",
                                   lambda: op_statistics_recompute(server, image_id, plain.keys()))
    if "na" in r["stats_recompute"]:
        log(f"[{tag}]   -> n/a: {r['stats_recompute']['na']}")

    log(f"[{tag}] PCA (components=2)")

    def analyze():
        def go():
            status, _, data = server.request(
                "POST", "/analyze", body=json.dumps({"image_id": image_id, "components": 2}),
                headers={"Content-Type": "application/json"})
            body = json.loads(data)
            if status != 200:
                raise RuntimeError(f"/analyze: HTTP {status} {body}")
            return body
        m = server.measure(go)
        body = m["out"]
        m["out"] = {k: body.get(k) for k in ("explained_variance", "explained_variance_ratio",
                                             "n_samples", "scores_image_id", "pca_result_omitted")}
        if body.get("scores_image_id"):  # free what it may hold; not timed
            server.request("DELETE", f"/images/{body['scores_image_id']}")
        return m
    r["pca"] = guarded(server, tag, "PCA", analyze)

    if not full:
        return r

    rng = random.Random(args.seed)
    planes = [(rng.randrange(T), rng.randrange(Z), rng.randrange(C)) for _ in range(args.slices)]
    log(f"[{tag}] {len(planes)} sequential slices on one connection")

    def slices():
        def go():
            times = []
            for t, z, c in planes:
                t0 = time.perf_counter()
                status, ctype, data = server.request(
                    "GET", f"/slice?image_id={image_id}&z={z}&time={t}&channel={c}")
                times.append(time.perf_counter() - t0)
                if status != 200 or not data.startswith(b"\x89PNG"):
                    raise RuntimeError(f"/slice: HTTP {status} {ctype} {data[:200]!r}")
            return times
        server.request("GET", f"/slice?image_id={image_id}&z=0&time=0&channel=0")  # open connection
        m = server.measure(go)
        m["median_s"] = median(m["out"])
        m["p99_s"] = percentile(m["out"], 99)
        return m
    r["slice"] = guarded(server, tag, "slices", slices)

    if shutil.which("wrk"):
        r["wrk"] = guarded(server, tag, "wrk", lambda: run_wrk(server, image_id, dims, args, r["stats_db_body"]))
    else:
        r["wrk"] = {"error": "wrk not installed (apt-get install -y wrk)"}
    return r


def stored_and_dd(server, image_id, path, run_dir):
    """The bytes pentascope stored for the image, and the time `dd
    conv=fsync` takes to write that many bytes (of the input file, warm in
    the page cache) to the same disk: the floor of any ingest."""
    group = next((os.path.join(d, n) for d, ns, _ in os.walk(server.data_dir)
                  for n in ns if n == f"{image_id}.zarr"), None)
    if group is None:
        raise RuntimeError(f"cannot find the stored group of {image_id} under {server.data_dir}")
    stored = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(group) for f in fs)
    block = 4 << 20
    out = os.path.join(run_dir, "dd.out")
    cmd = ["dd", f"if={path}", f"of={out}", f"bs={block}",
           f"count={-(-stored // block)}", "conv=fsync", "status=none"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    dd_s = time.perf_counter() - t0
    os.remove(out)
    return {"bytes": stored, "dd_s": dd_s, "cmd": " ".join(cmd[:1] + cmd[3:])}


def run_wrk(server, image_id, dims, args, stats):
    """Random planes at many connections, each request a key the slice cache
    has not seen (the channel's own display window, its low end moved by a
    random millionth): uncached slices, as the target asks, with the cache
    still on and filling as it would."""
    T, Z, C, _, _ = dims
    log(f"wrk -t{args.wrk_threads} -c{args.wrk_connections} -d{args.wrk_duration}s random planes")
    windows = ";".join(f"{lo!r},{hi!r}" for lo, hi in zip(stats.get("display_min", []), stats.get("display_max", [])))
    env = dict(os.environ, BENCH_IMAGE_ID=image_id, BENCH_T=str(T), BENCH_Z=str(Z), BENCH_C=str(C),
               BENCH_WINDOWS=windows)
    cmd = ["wrk", f"-t{args.wrk_threads}", f"-c{args.wrk_connections}", f"-d{args.wrk_duration}s",
           "--timeout", "30s", "-s", os.path.join(HERE, "slice.lua"), server.url]

    def go():
        return subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = server.measure(go)
    p = m.pop("out")
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            res = json.loads(line[len("WRK_JSON "):])
    if res is None:
        return {"error": f"wrk exit {p.returncode}: {(p.stderr or p.stdout).strip()[:300]}"}
    res.update(m)
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["non2xx_or_socket_errors"] = sum(res[k] for k in ("connect", "read", "write", "status", "timeout"))
    res["cmd"] = " ".join(cmd)
    return res


# ------------------------------------------------------------------ utilities

def median(xs):
    s = sorted(xs)
    n = len(s)
    return (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2) if n else None


def percentile(xs, q):
    """Linear interpolation, as numpy.percentile's default."""
    s = sorted(xs)
    if not s:
        return None
    k = (len(s) - 1) * q / 100
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def fmt_t(s):
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_cores(c):
    return "—" if c is None else f"{c:.2f}"


def fmt_mib(kib):
    return "—" if kib is None else f"{kib / 1024:.0f} MiB"


def fmt_ratio(ref, ps):
    if ref is None or ps is None or ps <= 0:
        return "—"
    r = ref / ps
    return f"{r:.3g}×"


def cat_file(path):
    t0 = time.perf_counter()
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def tiff_dims(path):
    """(T, Z, C, Y, X), dtype, nbytes, description of series 0."""
    import tifffile
    with tifffile.TiffFile(path) as tf:
        s = tf.series[0]
        axes, shape = s.get_axes(False), s.get_shape(False)
        d = dict(zip(axes, shape))
        dims = [d.get(k, 1) for k in "TZCYX"]
        extra = {k: v for k, v in d.items() if k not in "TZCYX" and v != 1}
        if extra:
            raise SystemExit(f"{path}: unexpected axes {extra}")
        comp = tf.pages[0].compression.name
        desc = (f"{'BigTIFF' if tf.is_bigtiff else 'TIFF'}"
                f"{' OME' if tf.is_ome else ''}{' ImageJ' if tf.is_imagej else ''}, "
                f"compression {comp}, {os.path.getsize(path) / MB:.1f} MB on disk")
        return dims, s.dtype, int(s.size) * s.dtype.itemsize, desc


def versions():
    import numpy
    import sklearn
    import tifffile
    import PIL
    try:
        import imagecodecs
        ic = imagecodecs.__version__
    except ImportError:
        ic = "missing"
    v = {"python": platform.python_version(), "tifffile": tifffile.__version__,
         "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
         "pillow": PIL.__version__, "imagecodecs": ic}

    def cmd_out(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout or p.stderr).strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001
            return f"unavailable ({e.__class__.__name__})"
    v["curl"] = cmd_out(["curl", "--version"]).split(" (")[0].removeprefix("curl ")
    v["wrk"] = (cmd_out(["wrk", "--version"]).split(" [")[0].removeprefix("wrk ")
                if shutil.which("wrk") else "not installed")
    return v, cmd_out


def machine():
    mi = meminfo()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "mem_total": mi.get("MemTotal", 0),
            "mem_available": mi.get("MemAvailable", 0), "cpu": model,
            "kernel": platform.release(), "load": os.getloadavg()}


# --------------------------------------------------------------------- report

def reference_side(path, dims, nbytes, args):
    """The Python reference, one subprocess per step. Returns a dict."""
    T, Z, C, Y, X = dims
    ref = {}
    avail = meminfo().get("MemAvailable", 0)
    as_limit = int(avail * 0.9)
    # estimated peaks: the array, plus for std a float64 copy of one channel,
    # plus for PCA a uint16 (pixels x channels) copy and float64 copies (seen:
    # ~130 MiB of interpreter and libraries + ~8.6x the image); steps that
    # would not fit are skipped
    base = 2 ** 28
    est = {"imread": base + 1.1 * nbytes, "stats": base + nbytes * (1 + 4 / C) * 1.1,
           "persist": base + nbytes * (1 + 4 / C) * 1.1, "pca": base + nbytes * 10}
    for step in ("imread", "stats", "persist", "pca"):
        if est[step] > avail * 0.85:
            ref[step] = {"error": f"skipped: needs ~{est[step] / 2**30:.1f} GiB, "
                                  f"{avail / 2**30:.1f} GiB available"}
            log(f"reference {step}: {ref[step]['error']}")
            continue
        log(f"reference {step} (own process)")
        zarr_dir = os.path.join(args.run_dir, "reference.zarr") if step == "persist" else None
        ref[step] = run_child(step, path, dims, as_limit, zarr_dir=zarr_dir)
        if zarr_dir:
            shutil.rmtree(zarr_dir, ignore_errors=True)
        if "error" in ref[step]:
            log(f"reference {step} failed: {ref[step]['error']}")
    rng = random.Random(args.seed + 1)
    planes = [(rng.randrange(T), rng.randrange(Z), rng.randrange(C)) for _ in range(args.ref_slices)]
    log(f"reference slice: {len(planes)} planes (own process)")
    ref["slice"] = run_child("slice", path, dims, as_limit, planes=planes)
    return ref


def threads_section(binary, path, dims, nbytes, args, run_dir):
    """Ingest, statistics-recompute and PCA with RAYON_NUM_THREADS=1 and with
    the default thread count, each on a fresh server."""
    out = {}
    for label, extra, drop in (("1", {"RAYON_NUM_THREADS": "1"}, ()),
                               ("default", {}, ())):
        dd = os.path.join(run_dir, f"data-threads-{label}")
        srv = Server(binary, dd, os.path.join(run_dir, f"server-threads-{label}.log"), extra, drop)
        try:
            cat_file(path)
            out[label] = pentascope_ops(srv, path, dims, nbytes, args, run_dir,
                                        f"threads={label}", full=False)
        finally:
            srv.stop()
            if not args.keep:
                shutil.rmtree(dd, ignore_errors=True)
    return out


def rel_err(a, b):
    if a is None or b is None:
        return None
    den = max(abs(b), 1e-300)
    return abs(a - b) / den


def build_report(ctx, results, threads):
    L = []
    w = L.append
    m = ctx["machine"]
    w(f"# pentascope vs Python reference — {ctx['date']}")
    w("")
    if ctx["quick"]:
        w("**QUICK SMOKE RUN (small shape): numbers are not the real result.**")
        w("")
    w(f"- command: `{ctx['command']}`")
    w(f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_total'] / 2**30:.1f} GiB RAM "
      f"({m['mem_available'] / 2**30:.1f} GiB available at start), Linux {m['kernel']}, "
      f"load average at start {m['load'][0]:.2f} {m['load'][1]:.2f} {m['load'][2]:.2f}, "
      f"at end {ctx['load_end'][0]:.2f} {ctx['load_end'][1]:.2f} {ctx['load_end'][2]:.2f} "
      "(other work on the machine skews the numbers)")
    w("- versions: " + ", ".join(f"{k} {v}" for k, v in ctx["versions"].items()))
    w(f"- pentascope: `{ctx['binary_version']}` ({ctx['git']}), binary `{ctx['binary_rel']}`")
    w(f"- server: `{' '.join(ctx['server_argv'])}`; environment passed: "
      + (", ".join(f"`{k}={v}`" for k, v in ctx["server_env"].items()) or "none")
      + "; every other setting at its default (`pentascope serve --help`)")
    if ctx.get("settings"):
        w("- server settings in effect: " + ", ".join(
            f"{n}={v}" + ("" if src in ("option", "default") else f" ({src})")
            for n, v, src in ctx["settings"]))
    w(f"- peak RSS of the server: VmHWM from /proc/<pid>/status, reset before each operation "
      f"(clear_refs: {'yes' if ctx['hwm_reset'] else 'NOT available: peaks are since server start'}); "
      "reference: VmHWM of its own process (one process per step, reset per phase)")
    w("- page cache: every input was read once with `cat` before each side measured it "
      "(warm cache for both sides); ingest is timed from curl's start to the JSON response")
    w("")
    for label, d in results.items():
        w(f"- data `{label}`: `{d['relpath']}` — shape TZCYX {tuple(d['dims'])} {d['dtype']}, "
          f"{d['nbytes'] / MB:.1f} MB uncompressed; {d['desc']}")
    w("")
    head = ["data", "operation", "pentascope time", "pentascope MB/s", "pentascope peak RSS",
            "pentascope CPU (cores)", "reference time", "reference peak RSS",
            "ratio (ref / pentascope)", "notes"]
    w("| " + " | ".join(head) + " |")
    w("|" + "|".join(["---"] * len(head)) + "|")

    def row(data, op, ps=None, ps_mbs=None, ps_peak=None, ps_cores=None, ref_t=None,
            ref_peak=None, ratio=True, notes=""):
        cells = [data, op, fmt_t(ps),
                 "—" if ps_mbs is None else f"{ps_mbs:.0f}",
                 fmt_mib(ps_peak), fmt_cores(ps_cores),
                 fmt_t(ref_t) if isinstance(ref_t, float) else (ref_t or "—"),
                 fmt_mib(ref_peak),
                 fmt_ratio(ref_t, ps) if ratio and isinstance(ref_t, float) else "—", notes]
        w("| " + " | ".join(cells) + " |")

    def ps_row(data, op, m, key="wall_s", nbytes=None, ref_t=None, ref_peak=None, notes=""):
        """A row for one pentascope measurement m (which may hold "error" or "na")."""
        if "error" in m:
            row(data, op, None, None, None, None, ref_t, ref_peak, ratio=False,
                notes=f"**pentascope failed: {m['error']}**" + (f"; {notes}" if notes else ""))
        elif "na" in m:
            row(data, op, None, None, None, None, ref_t, ref_peak, ratio=False,
                notes=f"n/a: {m['na']} (measured {fmt_t(m.get('wall_s'))})"
                      + (f"; {notes}" if notes else ""))
        else:
            t = m[key]
            row(data, op, t, None if nbytes is None else nbytes / MB / t, m.get("peak_kib"),
                m.get("cores"), ref_t, ref_peak, notes=notes)

    checks = []
    for label, d in results.items():
        ps, ref, nb = d["ps"], d["ref"], d["nbytes"]
        plane = nb / (d["dims"][0] * d["dims"][1] * d["dims"][2])

        def refv(step, key, peak_phase=None):
            x = ref.get(step, {})
            if "error" in x:
                return f"failed/skipped: {x['error']}", None
            peak = x["peak_kib"].get(peak_phase) if peak_phase else x.get("overall_peak_kib")
            return x.get(key), peak

        # ingest
        i = ps["ingest"]
        rt, rp = refv("stats", "total_s")
        sl_ = i.get("server_log", {})
        srv_note = (f"; server log: body received after {fmt_t(sl_['received_s'])}, published after "
                    f"{fmt_t(sl_['published_s'])}" if {"received_s", "published_s"} <= set(sl_) else "")
        ps_row(label, "Ingest (upload → published)", i, nbytes=nb, ref_t=rt, ref_peak=rp,
               notes="ref: imread + numpy stats" + srv_note)
        rt, rp = refv("persist", "total_s")
        pr = ref.get("persist", {})
        ps_row(label, "Ingest vs a persisting Python service", i, nbytes=nb, ref_t=rt, ref_peak=rp,
               notes="ref: imread + numpy stats + zarr-python write (zstd 1, a plane per chunk) "
                     "+ sync" + (f" ({fmt_t(pr['imread_s'])} + {fmt_t(pr['stats_s'])} + "
                                 f"{fmt_t(pr['write_s'])}; zarr-python stored "
                                 f"{pr['stored_bytes'] / nb:.1%} of the raw samples)"
                                 if "write_s" in pr else ""))
        st_ = ps.get("stored", {})
        if "bytes" in st_:
            row(label, "Stored size, and `dd conv=fsync` writing as many bytes", None, None,
                None, None, st_["dd_s"], None, ratio=False,
                notes=f"**{st_['bytes'] / nb:.1%}** of the raw samples ({st_['bytes'] / MB:.0f} MB); "
                      f"ingest / dd = **{i['wall_s'] / st_['dd_s']:.2f}×** (`{st_['cmd']}`)"
                      if "wall_s" in i else "")
        # statistics
        rt, rp = refv("stats", "stats_s", "stats")
        ps_row(label, "Statistics from the store (recompute=true)", ps["stats_recompute"],
               nbytes=nb, ref_t=rt, ref_peak=rp,
               notes="ref: numpy stats on the in-memory array (imread excluded)")
        sd = ps["stats_db"]
        ps_row(label, "Statistics from the database", sd, key="median_s",
               notes=f"median of {len(sd.get('out', []))} requests; no reference")
        # PCA
        rt, rp = refv("pca", "total_s")
        ps_row(label, "PCA, 2 components", ps["pca"], nbytes=nb, ref_t=rt, ref_peak=rp,
               notes="ref: imread + PCA(2).fit_transform")
        # slices
        if "slice" in ps:
            sl = ps["slice"]
            rs = ref.get("slice", {})
            if "error" in rs:
                rmed = rp99 = f"failed: {rs['error']}"
                rpk = None
            else:
                rmed, rp99 = median(rs["times_s"]), percentile(rs["times_s"], 99)
                rpk = rs.get("overall_peak_kib")
            nref = len(rs.get("times_s", []))
            ps_row(label, f"Slice, median of {len(sl.get('out', []))} sequential", sl, "median_s",
                   plane, rmed, rpk, notes=f"MB/s of one plane; ref: open + page read + "
                                           f"percentiles + PNG, {nref} planes")
            if "error" not in sl:
                slp = dict(sl, peak_kib=None, cores=None)
                ps_row(label, f"Slice, p99 of {len(sl['out'])} sequential", slp, "p99_s", plane,
                       rp99, None, notes=f"ref: p99 of its {nref} planes")
        if "wrk" in ps:
            wk = ps["wrk"]
            if "error" in wk:
                row(label, "Slice under load (wrk)", notes=f"**{wk['error']}**")
            else:
                row(label, f"Slice under load (wrk {ctx['wrk_desc']})", wk["p50_us"] / 1e6,
                    None, wk["peak_kib"], wk["cores"], None, None,
                    notes=f"**{wk['rps']:.0f} req/s**, p50 {fmt_t(wk['p50_us'] / 1e6)}, "
                          f"p99 {fmt_t(wk['p99_us'] / 1e6)}, "
                          f"**errors (non-2xx + socket): {wk['non2xx_or_socket_errors']}** "
                          f"(status {wk['status']}, connect {wk['connect']}, read {wk['read']}, "
                          f"write {wk['write']}, timeout {wk['timeout']})")
        # reference-only rows
        rt, rp = refv("imread", "imread_s", "imread")
        row(label, "tifffile.imread alone", None, None, None, None, rt, rp, ratio=False,
            notes=("" if not isinstance(rt, float) else f"{nb / MB / rt:.0f} MB/s"))
        ct = d["cat_s"]
        row(label, "Ceiling: `cat file > /dev/null` (warm cache)", None, None, None, None, ct, None,
            ratio=False, notes=f"{os.path.getsize(d['path']) / MB / ct:.0f} MB/s of the file")
        rt, _ = refv("imread", "sum_s")
        row(label, "Ceiling: `a.sum()` over the decoded array", None, None, None, None, rt, None,
            ratio=False, notes=("" if not isinstance(rt, float) else
                                f"{nb / MB / rt:.0f} MB/s; imread excluded"))

        # correctness cross-checks (cheap: the values are already there)
        st = ref.get("stats", {})

        def stat_diff(body):
            errs = [rel_err(x, y) for key in ("mean", "std", "min", "max")
                    for x, y in zip(body.get(key) or [], st[key])]
            errs = [e for e in errs if e is not None]
            return f"{max(errs):.2e}" if errs else "nothing to compare"
        if "mean" in st and ps.get("stats_db_body", {}).get("mean"):
            checks.append(f"`{label}` statistics (database) vs numpy: max relative difference "
                          f"{stat_diff(ps['stats_db_body'])}")
        sr = ps["stats_recompute"].get("body")
        if "na" not in ps["stats_recompute"] and sr and "mean" in st:
            checks.append(f"`{label}` statistics (recompute) vs numpy: max relative difference "
                          f"{stat_diff(sr)}")
        rpca = ref.get("pca", {})
        pev = ps["pca"].get("out", {}).get("explained_variance") if "error" not in ps["pca"] else None
        if "explained_variance" in rpca and pev:
            errs = [rel_err(x, y) for x, y in zip(pev, rpca["explained_variance"])]
            checks.append(f"`{label}` PCA explained variance vs scikit-learn: max relative "
                          f"difference {max(errs):.2e}")
    w("")
    w("Times are wall clock; MB/s = 10^6 bytes of the uncompressed image (one plane for slices) "
      f"per second; RSS in MiB; CPU = server CPU time / wall time (2.0 = both cores busy; "
      + ("from the server's CPU-time clock" if ctx.get("cpu_precise") else
         f"— for operations shorter than {MIN_CPU_WALL} s: CPU time only in 10 ms ticks here")
      + "); "
      "ratio > 1 means pentascope is faster.")

    if threads:
        w("")
        w(f"### Threads (`{threads['label']}`): server with `RAYON_NUM_THREADS=1` vs default "
          f"({os.cpu_count()} CPUs), fresh server each")
        w("")
        w("| operation | 1 thread | CPU (cores) | default | CPU (cores) | speedup 1→default |")
        w("|---|---|---|---|---|---|")
        one, dflt = threads["runs"].get("1", {}), threads["runs"].get("default", {})
        for key, name in (("ingest", "Ingest"), ("stats_recompute", "Statistics recompute"),
                          ("pca", "PCA, 2 components")):
            x, y = one.get(key, {"error": "not run"}), dflt.get(key, {"error": "not run"})
            bad = [m.get("error") or m.get("na") for m in (x, y) if "error" in m or "na" in m]
            if bad:
                w(f"| {name} | n/a | — | n/a | — | n/a ({bad[0]}) |")
                continue
            w(f"| {name} | {fmt_t(x['wall_s'])} | {fmt_cores(x['cores'])} | {fmt_t(y['wall_s'])} | "
              f"{fmt_cores(y['cores'])} | {x['wall_s'] / y['wall_s']:.2f}× |")

    w("")
    w(f"### Targets (data `{next(iter(results))}`)")
    w("")
    first = next(iter(results))
    w(from_targets(results[first]["ps"], results[first]["ref"], threads))
    if checks:
        w("")
        w("### Checks")
        w("")
        for c in checks:
            w(f"- {c}")
    w("")
    return "\n".join(L)


def from_targets(ps, ref, threads):
    """Verdicts against the targets in BENCHMARKS.md, for the first data set."""
    out = []

    def verdict(ok):
        return "—" if ok is None else ("PASS" if ok else "MISS")

    def ratio(ref_step, ref_key, m, key="wall_s"):
        x = ref.get(ref_step, {})
        if ref_key not in x or "error" in m or "na" in m or not m.get(key):
            return None
        return x[ref_key] / m[key]

    def fr(r):
        return "—" if r is None else f"{r:.2f}×"

    i = ps["ingest"]
    r = ratio("persist", "total_s", i)
    st = ps.get("stored", {})
    dd = i["wall_s"] / st["dd_s"] if "dd_s" in st and "wall_s" in i else None
    out.append(f"- ingest ≥2.5× the persisting Python reference (imread + stats + zarr write + "
               f"sync): {fr(r)} → {verdict(None if r is None else r >= 2.5)}")
    out.append(f"- ingest within 1.2× of `dd conv=fsync` writing the stored bytes: "
               f"{'—' if dd is None else f'{dd:.2f}×'} → {verdict(None if dd is None else dd <= 1.2)}")
    peak = i.get("peak_kib")
    out.append(f"- ingest peak RSS ≤300 MiB: {fmt_mib(peak)} → "
               f"{verdict(None if peak is None else peak / 1024 <= 300)}")
    frac = st["bytes"] / ps["nbytes"] if "bytes" in st and ps.get("nbytes") else None
    out.append(f"- stored size ≤70% of the raw samples: "
               f"{'—' if frac is None else f'{frac:.1%}'} → {verdict(None if frac is None else frac <= 0.7)}")
    s = ps["stats_recompute"]
    r = ratio("imread", "sum_s", s)
    out.append(f"- statistics from the store no slower than numpy `a.sum()` over the in-memory "
               f"array: {fr(r)} → "
               + (f"n/a ({s['na']})" if "na" in s else verdict(None if r is None else r >= 1)))
    r = ratio("pca", "total_s", ps["pca"])
    out.append(f"- PCA ≥25× imread+fit_transform: {fr(r)} → {verdict(None if r is None else r >= 25)}")
    sl, rs = ps.get("slice"), ref.get("slice", {})
    if sl is not None:
        r = (median(rs["times_s"]) / sl["median_s"]
             if "times_s" in rs and "median_s" in sl else None)
        out.append(f"- slice ≥25× the Python path (medians): {fr(r)} → "
                   f"{verdict(None if r is None else r >= 25)}")
    wk = ps.get("wrk")
    if wk is not None:
        n, rps = wk.get("non2xx_or_socket_errors"), wk.get("rps")
        ok = None if n is None or rps is None else (n == 0 and rps >= 600)
        out.append(f"- uncached random planes at 32 connections ≥600 req/s with zero errors: "
                   f"{'—' if rps is None else f'{rps:.0f} req/s'}, {'—' if n is None else n} "
                   f"errors → {verdict(ok)}")
    out.append("- one PCA on two single-thread workers ≥1.8× one: see the split table "
               "(bench/split.py)")
    if threads:
        d = threads["runs"].get("default", {})
        ks = [k for k in ("ingest", "stats_recompute", "pca")
              if k in d and "error" not in d[k] and "na" not in d[k] and d[k]["cores"] is not None]
        used = [f"{k} {d[k]['cores']:.2f}" for k in ks]
        ok = all(d[k]["cores"] >= 1.5 for k in ks) if ks else None
        out.append(f"- both cores used (server CPU ≥1.5 cores, default threads): "
                   f"{', '.join(used) or '—'} → {verdict(ok)}")
    return "\n".join(out)


# ----------------------------------------------------------------------- main

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        return child_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, metavar="LABEL=PATH",
                    help="a TIFF to measure (repeatable); the first one also gets the threads table")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "pentascope"))
    ap.add_argument("--quick", action="store_true", help="mark the report as a smoke run")
    ap.add_argument("--slices", type=int, default=50, help="sequential /slice requests")
    ap.add_argument("--ref-slices", type=int, default=20, help="planes for the Python slice path")
    ap.add_argument("--stat-requests", type=int, default=20)
    ap.add_argument("--wrk-duration", type=int, default=20)
    ap.add_argument("--wrk-connections", type=int, default=32)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--no-threads", action="store_true", help="skip the RAYON_NUM_THREADS table")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the servers' data directories")
    ap.add_argument("--command", default=None, help="command line to print in the header")
    args = ap.parse_args()

    # a TERM ends the run like Ctrl-C does: servers are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.path.exists(args.binary):
        raise SystemExit(f"{args.binary} is missing: cargo build --release -p pentascope")
    if not shutil.which("curl"):
        raise SystemExit("curl is required (apt-get install -y curl)")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = os.path.join(OUT, f"run-{stamp}")
    os.makedirs(run_dir, exist_ok=True)
    args.run_dir = run_dir

    vers, cmd_out = versions()
    git = cmd_out(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    server_env = {k: v for k, v in sorted(os.environ.items())
                  if k.startswith("PENTASCOPE_") or k in ("RAYON_NUM_THREADS", "RUST_LOG")}
    ctx = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "quick": args.quick, "machine": machine(), "versions": vers,
           "command": args.command or " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
           "binary_version": cmd_out([args.binary, "--version"]), "git": f"git {git}",
           "binary_rel": os.path.relpath(args.binary, ROOT), "server_env": server_env,
           "wrk_desc": f"-t{args.wrk_threads} -c{args.wrk_connections} -d{args.wrk_duration}s"}
    if "PENTASCOPE_DATA_DIR" in server_env:
        log("note: PENTASCOPE_DATA_DIR is overridden by --data-dir")

    results = {}
    threads = None
    for spec in args.data:
        label, _, path = spec.partition("=")
        path = os.path.abspath(path)
        dims, dtype, nbytes, desc = tiff_dims(path)
        log(f"== {label}: {path} TZCYX {dims} {dtype} ({nbytes / MB:.1f} MB)")
        d = {"path": path, "relpath": os.path.relpath(path, ROOT), "dims": dims,
             "dtype": str(dtype), "nbytes": nbytes, "desc": desc}
        log("warming the page cache (cat), then timing a warm cat")
        cat_file(path)
        d["cat_s"] = cat_file(path)

        dd = os.path.join(run_dir, f"data-{label}")
        srv = Server(args.binary, dd, os.path.join(run_dir, f"server-{label}.log"))
        ctx["server_argv"] = [os.path.relpath(args.binary, ROOT)] + srv.argv[1:-1] + ["<run dir>/data-…"]
        ctx["hwm_reset"] = srv.hwm_resettable
        ctx["cpu_precise"] = srv.cpu_precise
        ctx["settings"] = server_settings(args.binary, srv.env, {
            "host": "127.0.0.1", "port": f"0 (picked {srv.port})", "data-dir": "<run dir>/data-<label>"})
        try:
            st, health = srv.get_json("/health")
            log(f"server {srv.url} pid {srv.pid}: /health {st} {health}")
            d["ps"] = pentascope_ops(srv, path, dims, nbytes, args, run_dir, label)
        finally:
            srv.stop()
            if not args.keep:
                shutil.rmtree(dd, ignore_errors=True)

        cat_file(path)  # warm again for the reference side
        d["ref"] = reference_side(path, dims, nbytes, args)
        results[label] = d

        if threads is None and not args.no_threads:
            threads = {"label": label,
                       "runs": threads_section(args.binary, path, dims, nbytes, args, run_dir)}

    ctx["load_end"] = os.getloadavg()
    report = build_report(ctx, results, threads)
    with open(os.path.join(run_dir, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(run_dir, "raw.json"), "w") as f:
        json.dump({"ctx": ctx, "results": results, "threads": threads}, f, indent=1, default=str)
    print(report)
    log(f"report written to {os.path.relpath(os.path.join(run_dir, 'report.md'), ROOT)} "
        f"(raw numbers: raw.json beside it)")


if __name__ == "__main__":
    main()
