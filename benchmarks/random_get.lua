-- GET a random file id from the list in $FIDS; with $RANGE_BYTES set, a random
-- range of that many bytes inside a file of $FILE_BYTES. With $CLOSE set, every
-- request asks for its connection to be closed, so wrk opens a new one each time.
local fids = {}
for line in io.lines(os.getenv("FIDS")) do fids[#fids + 1] = line end
local range_bytes = tonumber(os.getenv("RANGE_BYTES") or "")
local file_bytes = tonumber(os.getenv("FILE_BYTES") or "")
local headers = {}
if os.getenv("CLOSE") then headers["Connection"] = "close" end
request = function()
  local path = "/" .. fids[math.random(#fids)]
  if range_bytes then
    local start = math.random(0, file_bytes - range_bytes)
    headers["Range"] = "bytes=" .. start .. "-" .. (start + range_bytes - 1)
  end
  return wrk.format("GET", path, headers)
end
