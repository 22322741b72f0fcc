-- GET a random file id from the list in $FIDS; with $RANGE_BYTES set, a random
-- range of that many bytes inside a file of $FILE_BYTES.
local fids = {}
for line in io.lines(os.getenv("FIDS")) do fids[#fids + 1] = line end
local range_bytes = tonumber(os.getenv("RANGE_BYTES") or "")
local file_bytes = tonumber(os.getenv("FILE_BYTES") or "")
request = function()
  local path = "/" .. fids[math.random(#fids)]
  if range_bytes then
    local start = math.random(0, file_bytes - range_bytes)
    return wrk.format("GET", path, {["Range"] = "bytes=" .. start .. "-" .. (start + range_bytes - 1)})
  end
  return wrk.format("GET", path)
end
