-- wrk script: TUNE-style postbacks, each a new conversion (unique transaction_id per thread and
-- request) on one of the click ids in $CLICKS_FILE.
local clicks = {}
for line in io.lines(os.getenv("CLICKS_FILE")) do
  clicks[#clicks + 1] = line
end
local token = os.getenv("POSTBACK_TOKEN")
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

local sent = 0

request = function()
  sent = sent + 1
  local click = clicks[(sent % #clicks) + 1]
  local path = "/postbacks/tune?token=" .. token .. "&aff_sub=" .. click
    .. "&transaction_id=t" .. thread_id .. "-" .. sent .. "&payout=0.10"
  return wrk.format("GET", path)
end
