-- wrk script for bench/run.py: varied requests per workload, chosen by environment variables.
--
--   BENCH_MODE=fixed   GET BENCH_PATH
--   BENCH_MODE=page    GET BENCH_PATH with {page} replaced by a page in [BENCH_LO, BENCH_HI]
--   BENCH_MODE=detail  GET /api/products/<id>/ with an id drawn from the file BENCH_IDS
--   BENCH_MODE=cursor  GET BENCH_PATH with {cursor} replaced by a line drawn from the file BENCH_LINES
--   BENCH_MODE=zipf    GET a line of the file BENCH_LINES (a path), the k-th most popular drawn with
--                      probability ~ 1/k (Zipf, s = 1): a few hot URLs and a long tail, as real traffic
--   BENCH_MODE=sweep   GET the lines of BENCH_LINES in turn from line BENCH_OFFSET + 1 (threads
--                      interleaved, wrapping round): a cache's warm-up, every URL once per pass
--   BENCH_MODE=signed  GET BENCH_PATH as one of the tokens of the file BENCH_TOKENS (each line a token, a
--                      tab and its claims), drawn at random
--   BENCH_MODE=book    POST /api/bookings/: request k of thread t books listing ids[k*threads+t]
--                      for [BENCH_START, BENCH_END) as guest tokens[same index], so every
--                      request is a distinct listing (no conflicts by construction)
--
-- done() prints one line "BENCH_JSON {...}" that bench/run.py parses. Random draws are
-- seeded per thread (fixed seed), so a run's request sequence is reproducible.

local mode = os.getenv("BENCH_MODE") or "fixed"
local path = os.getenv("BENCH_PATH") or "/"
local lo = tonumber(os.getenv("BENCH_LO") or "1")
local hi = tonumber(os.getenv("BENCH_HI") or "1")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local threads = {}
local counter = 1

local function lines(file)
  local t = {}
  if file then
    for line in io.lines(file) do
      if #line > 0 then t[#t + 1] = line end
    end
  end
  return t
end

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local ids, tokens, cumulative
local tid, nthreads = 0, 1

function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  math.randomseed(4242 + tid)
  if mode == "detail" or mode == "book" then ids = lines(os.getenv("BENCH_IDS")) end
  if mode == "book" then tokens = lines(os.getenv("BENCH_TOKENS")) end
  if mode == "signed" then
    tokens = {}
    for _, line in ipairs(lines(os.getenv("BENCH_TOKENS"))) do tokens[#tokens + 1] = line:match("^[^\t]+") end
  end
  if mode == "cursor" or mode == "zipf" or mode == "sweep" then ids = lines(os.getenv("BENCH_LINES")) end
  if mode == "zipf" then
    cumulative = {}
    local total = 0
    for k = 1, #ids do
      total = total + 1 / k
      cumulative[k] = total
    end
    for k = 1, #ids do cumulative[k] = cumulative[k] / total end
  end
end

-- The index of a Zipf draw: the first k whose cumulative share reaches a uniform draw.
local function zipf()
  local u, lo, hi = math.random(), 1, #cumulative
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cumulative[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Many clients, not one: each GET comes from one of 10,000 addresses (the API trusts
-- 127.0.0.1's X-Forwarded-For in the bench), so rate limiting costs what it costs per client.
local function client()
  local n = math.random(1, 10000)
  return { ["X-Forwarded-For"] = string.format("10.0.%d.%d", math.floor(n / 256), n % 256) }
end

function request()
  if mode == "page" then
    local p = path:gsub("{page}", tostring(math.random(lo, hi)))
    return wrk.format("GET", p, client())
  elseif mode == "cursor" then
    return wrk.format("GET", (path:gsub("{cursor}", ids[math.random(1, #ids)])), client())
  elseif mode == "zipf" then
    return wrk.format("GET", ids[zipf()], client())
  elseif mode == "sweep" then
    local k = (offset + (counter - 1) * nthreads + tid) % #ids
    counter = counter + 1
    return wrk.format("GET", ids[k + 1], client())
  elseif mode == "detail" then
    return wrk.format("GET", "/api/products/" .. ids[math.random(1, #ids)] .. "/", client())
  elseif mode == "signed" then
    local headers = client()
    headers["Authorization"] = "Bearer " .. tokens[math.random(1, #tokens)]
    return wrk.format("GET", path, headers)
  elseif mode == "book" then
    local k = counter * nthreads + tid
    counter = counter + 1
    local body = string.format('{"product_id":"%s","start_date":"%s","end_date":"%s","guests":1}',
      ids[(k % #ids) + 1], os.getenv("BENCH_START"), os.getenv("BENCH_END"))
    return wrk.format("POST", "/api/bookings/", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[(k % #tokens) + 1],
    }, body)
  end
  return wrk.format("GET", path, client())
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
