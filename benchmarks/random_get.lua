-- GET a random file id from the list in $FIDS.
local fids = {}
for line in io.lines(os.getenv("FIDS")) do fids[#fids + 1] = line end
request = function()
  return wrk.format("GET", "/" .. fids[math.random(#fids)])
end
