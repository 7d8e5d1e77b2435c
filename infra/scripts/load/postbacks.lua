-- wrk script: TUNE-style postbacks, each a new conversion (unique transaction_id per thread and
-- request) on one of the click ids in $CLICKS_FILE.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local clicks = {}
for line in io.lines(os.getenv("CLICKS_FILE")) do
  clicks[#clicks + 1] = line
end
local token = os.getenv("POSTBACK_TOKEN")

request = function()
  sent = sent + 1
  local click = clicks[(sent % #clicks) + 1]
  local path = "/postbacks/tune?token=" .. token .. "&aff_sub=" .. click
    .. "&transaction_id=t" .. thread_id .. "-" .. sent .. "&payout=0.10"
  return wrk.format("GET", path)
end
