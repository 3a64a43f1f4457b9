-- wrk script for benchmarks/intake_submit.py: POST /api/v1/applications with a different
-- (fictitious, valid-check-digit) citizen and a different place each time, so every request is
-- a new original application (duplicates would be cheaper and would not be routed).
-- `wrk ... -s intake_submit.lua URL -- RUN`: each run (warm-up 1, measurement 2) and each
-- thread draws from its own range, so no request repeats an earlier one's citizen or place.
local counter = 0
-- a global, not a local: `thread:set` in setup() sets each thread's globals (a local here would
-- stay 0 in every thread, and the threads would send the same applications)
thread_id = 0
local run = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  run = tonumber(args[1] or "0")
end

local function tckn(n)
  local d = {}
  local body = string.format("%09d", n % 1000000000)
  d[1] = 1 + (n % 9)
  for i = 2, 9 do d[i] = tonumber(body:sub(i, i)) end
  local odd = d[1] + d[3] + d[5] + d[7] + d[9]
  local even = d[2] + d[4] + d[6] + d[8]
  d[10] = (odd * 7 - even) % 10
  local total = 0
  for i = 1, 10 do total = total + d[i] end
  d[11] = total % 10
  local out = {}
  for i = 1, 11 do out[i] = tostring(d[i]) end
  return table.concat(out)
end

local categories = {"road_damage", "waste_collection", "noise", "street_lighting", "cleaning"}

function request()
  counter = counter + 1
  local n = (run * 16 + thread_id) * 1000000 + counter
  local lat = 36.70 + (n % 997) * 0.001
  local lon = 34.40 + (n % 991) * 0.001
  local body = string.format([[{"kind":"complaint","category":"%s","channel":"web",
"description":"Benchmark başvurusu %d: sokakta sorun var.",
"location":{"province":"Mersin","district":"Mezitli","neighbourhood":"Tece","lat":%.5f,"lon":%.5f},
"citizen":{"tckn":"%s","first_name":"Deneme","last_name":"Kişi","phone":"0555 %03d %02d %02d"}}]],
    categories[(n % #categories) + 1], n, lat, lon, tckn(n), n % 1000, math.floor(n / 1000) % 100,
    math.floor(n / 100000) % 100)
  return wrk.format("POST", "/api/v1/applications",
                    {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("WRK requests=%d duration_us=%d errors_status=%d errors_socket=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
  for _, p in ipairs({50, 95, 99}) do
    io.write(string.format("WRK p%d_us=%d\n", p, latency:percentile(p)))
  end
end
