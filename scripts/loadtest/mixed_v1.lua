-- wrk script for the v1 API (issue 10's mix): 50% BM25 searches (a third filtered, a fifth hybrid with
-- weights and convex fusion, some second pages), 10% vector searches, 10% batch searches of 4 queries,
-- 10% upserts of 5 documents, 10% partial updates of 5 documents, 10% scroll pages of 100 ids.
-- Each request carries X-Request-Id "<kind>-<send time in us>" (the server echoes it), so the end prints
-- latency percentiles per kind as well as wrk's overall ones (LAT_DUMP=FILE also writes every request).
-- KIND=<kind> sends only that kind. NOPATCH=1 sends a scroll page (still tagged "patch") in place of
-- each partial update: the mix as it would run if patches cost nothing (an upper bound, session 23).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } quiver_timespec;
int clock_gettime(int clk_id, quiver_timespec* tp);
]]
local ts = ffi.new("quiver_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
-- Per kind: latencies in us, read by done() through thread:get (flat tables: wrk's copy of a table
-- holding tables crashes).
local kinds = {"text", "hybrid", "vector", "batch", "upsert", "patch", "scroll"}
for _, kind in ipairs(kinds) do
  _G["lat_" .. kind] = {}
  _G["end_" .. kind] = {}  -- completion times (us, CLOCK_MONOTONIC), for LAT_DUMP
end
local words = {"vitamin", "cancer", "cell", "protein", "gene", "risk", "patients", "mice", "expression", "therapy",
               "infection", "brain", "blood", "dna", "immune", "tumor", "clinical", "mutation", "insulin", "virus"}
local counter = 0
math.randomseed(os.time())
local function headers(kind)
  return {["Content-Type"] = "application/json", ["X-Request-Id"] = kind .. "-" .. now_us()}
end

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

-- KIND=<kind> sends only that kind (each kind is a range of the mix's 1-100 draw; "text" covers the
-- filtered and unfiltered BM25 searches): scripts/loadtest/kind-cost.sh measures each kind's CPU cost.
local ranges = {hybrid = {1, 10}, text = {11, 50}, vector = {51, 60}, batch = {61, 70}, upsert = {71, 80},
                patch = {81, 90}, scroll = {91, 100}}
local only = os.getenv("KIND")
local nopatch = (os.getenv("NOPATCH") or "") ~= ""
local lo, hi = 1, 100
if only and only ~= "" then
  assert(ranges[only], "KIND must be one of hybrid, text, vector, batch, upsert, patch, scroll")
  lo, hi = ranges[only][1], ranges[only][2]
end

request = function()
  counter = counter + 1
  local r = math.random(lo, hi)
  if r <= 50 then
    return wrk.format("POST", "/v1/collections/load/search", headers(r <= 10 and "hybrid" or "text"), search_body(r))
  elseif r <= 60 then
    local body = '{"field": "emb", "vector": ' .. vec() .. ', "limit": 10, "fields": ["title"]}'
    return wrk.format("POST", "/v1/collections/load/search", headers("vector"), body)
  elseif r <= 70 then
    local s = {}
    for i = 1, 4 do s[i] = search_body(math.random(11, 50)) end
    return wrk.format("POST", "/v1/collections/load/search/batch", headers("batch"), '{"searches": [' .. table.concat(s, ",") .. ']}')
  elseif r <= 80 then
    local docs = {}
    for i = 1, 5 do
      local id = math.random(0, 99999)
      docs[i] = '{"id": "doc' .. id .. '", "title": "updated", "text": "' .. words[math.random(#words)] ..
                ' updated text ' .. counter .. '", "tag": "u", "year": 2024, "emb": ' .. vec() .. '}'
    end
    return wrk.format("POST", "/v1/collections/load/documents", headers("upsert"), "[" .. table.concat(docs, ",") .. "]")
  elseif r <= 90 and nopatch then
    local body = '{"limit": 100, "fields": [], "cursor": "doc' .. math.random(0, 99999) .. '"}'
    return wrk.format("POST", "/v1/collections/load/scroll", headers("patch"), body)
  elseif r <= 90 then
    local docs = {}
    for i = 1, 5 do
      docs[i] = '{"id": "doc' .. math.random(0, 99999) .. '", "year": ' .. math.random(1990, 2024) .. ', "tag": "p"}'
    end
    return wrk.format("PATCH", "/v1/collections/load/documents", headers("patch"), "[" .. table.concat(docs, ",") .. "]")
  else
    local body = '{"limit": 100, "fields": [], "cursor": "doc' .. math.random(0, 99999) .. '"}'
    return wrk.format("POST", "/v1/collections/load/scroll", headers("scroll"), body)
  end
end

local statuses = {}
response = function(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
  local id = hdrs["X-Request-Id"] or hdrs["x-request-id"]
  if id then
    local kind, t0 = string.match(id, "^(%a+)-(%d+)$")
    local t = kind and _G["lat_" .. kind]
    if t then
      local now = now_us()
      t[#t + 1] = now - tonumber(t0)
      local e = _G["end_" .. kind]
      e[#e + 1] = now
    end
  end
end

done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests %d, errors: connect %d read %d write %d status %d timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
  -- LAT_DUMP=FILE: every request as "kind completion_us latency_us" (to see when the tail happens).
  local dump = os.getenv("LAT_DUMP")
  local f = dump and io.open(dump, "w")
  if f then
    for _, kind in ipairs(kinds) do
      for _, t in ipairs(threads) do
        local l, e = t:get("lat_" .. kind) or {}, t:get("end_" .. kind) or {}
        for i = 1, #l do f:write(kind, " ", e[i], " ", l[i], "\n") end
      end
    end
    f:close()
  end
  local line = "per kind (p50/p99 ms, n):"
  for _, kind in ipairs(kinds) do
    local v = {}
    for _, t in ipairs(threads) do
      for _, x in ipairs(t:get("lat_" .. kind) or {}) do v[#v + 1] = x end
    end
    table.sort(v)
    local function pct(p) return v[math.max(1, math.ceil(#v * p / 100))] / 1000 end
    if #v > 0 then line = line .. string.format(" %s %.1f/%.1f %d", kind, pct(50), pct(99), #v) end
  end
  io.write(line .. "\n")
end
