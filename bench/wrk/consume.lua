-- wrk script for scenario 5: POST /v1/quota/consume as one of many users.
-- Arguments (after --): <tokens file, one JWT per line> [think time in ms per connection between requests]
-- The think time turns wrk's closed loop into a lower offered rate (the "half of saturation" run); wrk measures
-- latency from the moment a request is written, so the think time is not counted in it.
-- done() prints one JSON line (prefixed "RESULT ") for scripts/bench.sh.
local tokens = {}
local think = 0
local body = '{"meter":"ai_requests","amount":1}'

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  f:close()
  think = tonumber(args[2] or "0") or 0
  math.randomseed(os.time() * 100 + (tid or 0))
end

function request()
  local t = tokens[math.random(#tokens)]
  return wrk.format("POST", "/v1/quota/consume",
    { ["Authorization"] = "Bearer " .. t, ["Content-Type"] = "application/json" }, body)
end

function delay()
  if think > 0 then return think end
  return 0
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local non2xx = summary.errors.status
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, s, summary.requests / s, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    non2xx, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
