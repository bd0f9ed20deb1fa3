-- wrk script for the v1 API (issue 10's mix): 50% BM25 searches (a third filtered, a fifth hybrid with
-- weights and convex fusion, some second pages), 10% vector searches, 10% batch searches of 4 queries,
-- 10% upserts of 5 documents, 10% partial updates of 5 documents, 10% scroll pages of 100 ids.
local words = {"vitamin", "cancer", "cell", "protein", "gene", "risk", "patients", "mice", "expression", "therapy",
               "infection", "brain", "blood", "dna", "immune", "tumor", "clinical", "mutation", "insulin", "virus"}
local counter = 0
math.randomseed(os.time())
local json = {["Content-Type"] = "application/json"}

local function vec()
  local t = {}
  for i = 1, 32 do t[i] = string.format("%.3f", math.random() * 2 - 1) end
  return "[" .. table.concat(t, ",") .. "]"
end

local function text_query()
  return words[math.random(#words)] .. " " .. words[math.random(#words)]
end

local function search_body(r)
  local q = text_query()
  if r <= 10 then
    return '{"queries": [{"field": "contents", "text": "' .. q .. '", "weight": 0.7}, {"field": "emb", "vector": ' ..
           vec() .. ', "weight": 0.3}], "fusion": {"method": "convex", "normalization": "min_max"}, "limit": 10, ' ..
           '"fields": ["title"]}'
  end
  local extra = ""
  if r <= 27 then extra = ', "filter": {"field": "year", "range": {"gte": 2000}}' end
  if r % 7 == 0 then extra = extra .. ', "offset": 10' end
  return '{"field": "contents", "text": "' .. q .. '", "limit": 10, "fields": ["title"]' .. extra .. '}'
end

request = function()
  counter = counter + 1
  local r = math.random(100)
  if r <= 50 then
    return wrk.format("POST", "/v1/collections/load/search", json, search_body(r))
  elseif r <= 60 then
    local body = '{"field": "emb", "vector": ' .. vec() .. ', "limit": 10, "fields": ["title"]}'
    return wrk.format("POST", "/v1/collections/load/search", json, body)
  elseif r <= 70 then
    local s = {}
    for i = 1, 4 do s[i] = search_body(math.random(11, 50)) end
    return wrk.format("POST", "/v1/collections/load/search/batch", json, '{"searches": [' .. table.concat(s, ",") .. ']}')
  elseif r <= 80 then
    local docs = {}
    for i = 1, 5 do
      local id = math.random(0, 99999)
      docs[i] = '{"id": "doc' .. id .. '", "title": "updated", "text": "' .. words[math.random(#words)] ..
                ' updated text ' .. counter .. '", "tag": "u", "year": 2024, "emb": ' .. vec() .. '}'
    end
    return wrk.format("POST", "/v1/collections/load/documents", json, "[" .. table.concat(docs, ",") .. "]")
  elseif r <= 90 then
    local docs = {}
    for i = 1, 5 do
      docs[i] = '{"id": "doc' .. math.random(0, 99999) .. '", "year": ' .. math.random(1990, 2024) .. ', "tag": "p"}'
    end
    return wrk.format("PATCH", "/v1/collections/load/documents", json, "[" .. table.concat(docs, ",") .. "]")
  else
    local body = '{"limit": 100, "fields": [], "cursor": "doc' .. math.random(0, 99999) .. '"}'
    return wrk.format("POST", "/v1/collections/load/scroll", json, body)
  end
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests %d, errors: connect %d read %d write %d status %d timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
