-- wrk script: the text searches of mixed_v1.lua alone (two query words; a third filtered by year, a fifth of
-- them hybrid with a vector clause, every seventh a second page), no writes: with run.sh's "server cpu" line,
-- the CPU cost of a search on an unchanging store (A/B of search-path changes).
local words = {"vitamin", "cancer", "cell", "protein", "gene", "risk", "patients", "mice", "expression", "therapy",
               "infection", "brain", "blood", "dna", "immune", "tumor", "clinical", "mutation", "insulin", "virus"}
math.randomseed(os.time())
local json = {["Content-Type"] = "application/json"}

local function vec()
  local t = {}
  for i = 1, 32 do t[i] = string.format("%.3f", math.random() * 2 - 1) end
  return "[" .. table.concat(t, ",") .. "]"
end

request = function()
  local r = math.random(50)
  local q = words[math.random(#words)] .. " " .. words[math.random(#words)]
  local body
  if r <= 10 then
    body = '{"queries": [{"field": "contents", "text": "' .. q .. '", "weight": 0.7}, {"field": "emb", "vector": ' ..
           vec() .. ', "weight": 0.3}], "fusion": {"method": "convex", "normalization": "min_max"}, "limit": 10, ' ..
           '"fields": ["title"]}'
  else
    local extra = ""
    if r <= 27 then extra = ', "filter": {"field": "year", "range": {"gte": 2000}}' end
    if r % 7 == 0 then extra = extra .. ', "offset": 10' end
    body = '{"field": "contents", "text": "' .. q .. '", "limit": 10, "fields": ["title"]' .. extra .. '}'
  end
  return wrk.format("POST", "/v1/collections/load/search", json, body)
end

done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests %d, errors: connect %d read %d write %d status %d timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
