-- wrk script: every request upserts ONE document (a 1-document batch) with a unique id, so each
-- acknowledged request is one durable write. Used by upsert-scaling.sh.
local words = {"vitamin", "cancer", "cell", "protein", "gene", "risk", "patients", "mice", "expression", "therapy"}
local counter = 0
local thread_id = 0
local threads = {}

setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

init = function(args)
  math.randomseed(os.time() + (tid or 0))
end

local function vec()
  local t = {}
  for i = 1, 32 do t[i] = string.format("%.3f", math.random() * 2 - 1) end
  return "[" .. table.concat(t, ",") .. "]"
end

request = function()
  counter = counter + 1
  local id = "w" .. (tid or 0) .. "-" .. counter
  local body = '[{"id": "' .. id .. '", "title": "upsert", "text": "' .. words[math.random(#words)] .. ' ' ..
               words[math.random(#words)] .. ' ' .. counter .. '", "tag": "u", "year": 2024, "emb": ' .. vec() .. '}]'
  return wrk.format("POST", "/collections/load/documents", {["Content-Type"] = "application/json"}, body)
end

local non2xx = 0
response = function(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d seconds=%.2f rate=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
    summary.errors.timeout))
end
