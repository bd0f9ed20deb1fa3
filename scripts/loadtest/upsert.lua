-- wrk script: every request upserts ONE document (a 1-document batch) with a unique id, so each
-- acknowledged request is one durable write. Used by upsert-scaling.sh.
local words = {"vitamin", "cancer", "cell", "protein", "gene", "risk", "patients", "mice", "expression", "therapy"}
local counter = 0
local threads = {}

setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

init = function(args)
  math.randomseed(os.time() + (tid or 0))
end

-- The client shares the machine's cores with the server, so it keeps its own work per request small:
-- each vector concatenates 32 components drawn at random from 2,001 preformatted values in [-1, 1]
-- (step 0.001, as "%.3f" of a uniform draw gives), instead of formatting 32 floats per request.
local components = {}
for i = 0, 2000 do components[i + 1] = string.format("%.3f", (i - 1000) / 1000) end
local row = {}
local headers = {["Content-Type"] = "application/json"}

local function vec()
  for i = 1, 32 do row[i] = components[math.random(2001)] end
  return "[" .. table.concat(row, ",") .. "]"
end

request = function()
  counter = counter + 1
  local id = "w" .. (tid or 0) .. "-" .. counter
  local body = '[{"id": "' .. id .. '", "title": "upsert", "text": "' .. words[math.random(#words)] .. ' ' ..
               words[math.random(#words)] .. ' ' .. counter .. '", "tag": "u", "year": 2024, "emb": ' .. vec() .. '}]'
  return wrk.format("POST", "/collections/load/documents", headers, body)
end

-- No `response` callback: wrk then hands no response to Lua (a table of headers and the body per
-- response); refused requests (status >= 400) are counted in summary.errors.status all the same.
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d seconds=%.2f rate=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
    summary.errors.timeout))
end
