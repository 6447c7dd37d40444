-- One wrk script for every scenario, configured by the environment the harness sets:
--   BENCH_METHOD    GET or POST
--   BENCH_PATH      the path; with BENCH_IDS_FILE, the prefix each request appends an id to
--   BENCH_API_KEY   sent as "Authorization: Bearer <key>"
--   BENCH_BODY      the request body (JSON), if any
--   BENCH_IDEM      "unique": a new Idempotency-Key on every request (run id, thread, counter);
--                   any other non-empty value: that one key on every request (idempotent replay)
--   BENCH_RUN_ID    makes the unique keys of one run differ from every other run's
--   BENCH_IDS_FILE  one id per line; each request picks one at random
--   BENCH_STATUS    "1": also count responses per HTTP status (costs a Lua call per response)
-- done() prints one line, "BENCH_JSON {...}", that the harness parses.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local api_key = os.getenv("BENCH_API_KEY")
local body = os.getenv("BENCH_BODY")
local idem = os.getenv("BENCH_IDEM") or ""
local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local ids_file = os.getenv("BENCH_IDS_FILE")
local count_status = os.getenv("BENCH_STATUS") == "1"
if body == "" then
  body = nil
end
if ids_file == "" then
  ids_file = nil
end

-- Main state: every thread, so done() can collect the per-thread status counts.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- Thread state.
local head -- everything before the per-request part of the request
local tail -- the blank line and the body
local ids = {}
local counter = 0
statuses = {}

function init(args)
  local h = {}
  h[#h + 1] = "Host: " .. wrk.host .. (wrk.port and (":" .. wrk.port) or "")
  if api_key then
    h[#h + 1] = "Authorization: Bearer " .. api_key
  end
  if body then
    h[#h + 1] = "Content-Type: application/json"
    h[#h + 1] = "Content-Length: " .. #body
  end
  if idem ~= "" and idem ~= "unique" then
    h[#h + 1] = "Idempotency-Key: " .. idem
  end
  local headers = table.concat(h, "\r\n") .. "\r\n"
  tail = "\r\n" .. (body or "")
  if ids_file then
    for line in io.lines(ids_file) do
      if line ~= "" then
        ids[#ids + 1] = line
      end
    end
    assert(#ids > 0, "no ids in " .. ids_file)
    math.randomseed(os.time() + (tid or 0))
    head = headers
  elseif idem == "unique" then
    head = method .. " " .. path .. " HTTP/1.1\r\n" .. headers .. "Idempotency-Key: " .. run_id .. "-" .. (tid or 0) .. "-"
  else
    -- Nothing varies: wrk sends one pre-built request and calls no Lua per request.
    wrk.method = method
    wrk.path = path
    wrk.body = body
    -- wrk.init has already put Host into wrk.headers: add to that table, do not replace it.
    if body then
      wrk.headers["Content-Type"] = "application/json"
    end
    if api_key then
      wrk.headers["Authorization"] = "Bearer " .. api_key
    end
    if idem ~= "" then
      wrk.headers["Idempotency-Key"] = idem
    end
  end
end

if ids_file then
  function request()
    return method .. " " .. path .. ids[math.random(#ids)] .. " HTTP/1.1\r\n" .. head .. tail
  end
elseif idem == "unique" then
  function request()
    counter = counter + 1
    return head .. counter .. "\r\n" .. tail
  end
end

if count_status then
  function response(status, headers, body)
    local k = tostring(status)
    statuses[k] = (statuses[k] or 0) + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  if count_status then
    local total = {}
    for _, thread in ipairs(threads) do
      for k, v in pairs(thread:get("statuses") or {}) do
        total[k] = (total[k] or 0) + v
      end
    end
    for k, v in pairs(total) do
      parts[#parts + 1] = string.format('"%s":%d', k, v)
    end
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,'
      .. '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ",")
  ))
end
