-- wrk script for bench/bench.py: every request is GET /slice for a random
-- plane (t, z, c) of one image, default rendering (8-bit auto-contrast PNG).
-- The image and its sizes come from the environment:
--   BENCH_IMAGE_ID, BENCH_T, BENCH_Z, BENCH_C
-- With BENCH_WINDOWS ("min,max;min,max;..." per channel: the image's own
-- display windows) every request names its channel's window with its low
-- end moved by a random fraction of a millionth: the same picture as the
-- default rendering, but a key the slice cache has never seen, so each
-- request reads, maps and encodes its plane (uncached slices).
-- done() prints one line "WRK_JSON {...}" that bench.py parses.

local id = os.getenv("BENCH_IMAGE_ID") or "image_1"
local T = tonumber(os.getenv("BENCH_T") or "1")
local Z = tonumber(os.getenv("BENCH_Z") or "1")
local C = tonumber(os.getenv("BENCH_C") or "1")

local windows = {}
for low, high in string.gmatch(os.getenv("BENCH_WINDOWS") or "", "([^,;]+),([^,;]+)") do
   windows[#windows + 1] = {tonumber(low), tonumber(high)}
end

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_seed", counter)
end

function init(args)
   math.randomseed(os.time() * 7919 + (thread_seed or 0) * 104729)
end

function request()
   local c = math.random(0, C - 1)
   local path = string.format("/slice?image_id=%s&z=%d&time=%d&channel=%d",
                              id, math.random(0, Z - 1), math.random(0, T - 1), c)
   local w = windows[c + 1]
   if w then
      path = path .. string.format("&min=%.12g&max=%.12g", w[1] - math.random() * 1e-6, w[2])
   end
   return wrk.format("GET", path)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%.0f,"bytes":%.0f,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
      '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"mean_us":%.1f,"max_us":%.0f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
