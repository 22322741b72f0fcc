-- PUT $SIZE-byte bodies to fresh file ids in volume $VID; each thread has its own id range.
-- QUERY (e.g. "fsync=true") is appended to every request.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
local body
function init()
  body = string.rep("k", tonumber(os.getenv("SIZE") or "1024"))
end
request = function()
  counter = counter + 1
  local key = tonumber(os.getenv("KEYBASE")) + tid * 16777216 + counter
  local fid = string.format("%s,%x%08x", os.getenv("VID"), key, 305419896)
  local query = os.getenv("QUERY")
  if query and query ~= "" then fid = fid .. "?" .. query end
  return wrk.format("PUT", "/" .. fid, {["Content-Type"] = "application/octet-stream"}, body)
end
