-- wrk script: 80% BM25 searches (some filtered), 10% vector searches, 10% upserts of 5 documents.
local words = {"vitamin", "cancer", "cell", "protein", "gene", "risk", "patients", "mice", "expression", "therapy",
               "infection", "brain", "blood", "dna", "immune", "tumor", "clinical", "mutation", "insulin", "virus"}
local counter = 0
math.randomseed(os.time())

local function vec()
  local t = {}
  for i = 1, 32 do t[i] = string.format("%.3f", math.random() * 2 - 1) end
  return "[" .. table.concat(t, ",") .. "]"
end

request = function()
  counter = counter + 1
  local r = math.random(100)
  if r <= 80 then
    local q = words[math.random(#words)] .. " " .. words[math.random(#words)]
    local filter = ""
    if r <= 20 then filter = ', "filter": {"field": "year", "range": {"gte": 2000}}' end
    local body = '{"field": "contents", "text": "' .. q .. '", "k": 10, "fields": ["title"]' .. filter .. '}'
    return wrk.format("POST", "/collections/load/search", {["Content-Type"] = "application/json"}, body)
  elseif r <= 90 then
    local body = '{"field": "emb", "vector": ' .. vec() .. ', "k": 10, "fields": ["title"]}'
    return wrk.format("POST", "/collections/load/search", {["Content-Type"] = "application/json"}, body)
  else
    local docs = {}
    for i = 1, 5 do
      local id = math.random(0, 99999)
      docs[i] = '{"id": "doc' .. id .. '", "title": "updated", "text": "' .. words[math.random(#words)] ..
                ' updated text ' .. counter .. '", "tag": "u", "year": 2024, "emb": ' .. vec() .. '}'
    end
    return wrk.format("POST", "/collections/load/documents", {["Content-Type"] = "application/json"},
                      "[" .. table.concat(docs, ",") .. "]")
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
