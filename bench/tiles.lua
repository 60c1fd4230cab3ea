-- wrk script: uncached 512 x 512 three-channel composite tiles of the
-- render benchmark's stack (bench/render.py uploads it as image_1 of a fresh
-- server), each request a random tile (z, column, row) under a random red
-- window start, so that the render cache almost never answers:
--
--   wrk -t2 -c32 -d15s -s bench/tiles.lua http://127.0.0.1:PORT
--
-- render.py's own 32-connection row uses a Python client, which shares the
-- machine's cores with the server; wrk takes less of them.
local id = os.getenv("BENCH_IMAGE_ID") or "image_1"

request = function()
  local z, col, row = math.random(0, 19), math.random(0, 3), math.random(0, 3)
  local start = math.random(1, 50000)
  return wrk.format("GET", "/render?image_id=" .. id .. "&z=" .. z .. "&tile=0," .. col .. "," .. row
    .. "&c=1%7C" .. start .. "%3A60000%24FF0000,2%7C1%3A60000%2400FF00,3%7C1%3A60000%240000FF")
end
