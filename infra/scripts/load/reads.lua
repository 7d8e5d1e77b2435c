-- wrk script: the admin reads of one instance, in turn: its stats, the first page of its
-- contacts, and a backfill preview (a dry run, which changes nothing); each connection pauses
-- $DELAY_MS milliseconds between two, as a dashboard would (a preview scans the window).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local instance = os.getenv("INSTANCE")
local auth = "Bearer " .. os.getenv("ADMIN_KEY")
local pause = tonumber(os.getenv("DELAY_MS") or "0")

function delay()
  return pause
end

request = function()
  sent = sent + 1
  local which = sent % 3
  if which == 0 then
    return wrk.format("GET", "/instances/" .. instance .. "/stats?days=2",
      { ["Authorization"] = auth })
  elseif which == 1 then
    return wrk.format("GET", "/instances/" .. instance .. "/contacts?limit=50",
      { ["Authorization"] = auth })
  end
  return wrk.format("POST", "/instances/" .. instance .. "/backfill",
    { ["Authorization"] = auth, ["Content-Type"] = "application/json" },
    '{"days": 2, "dry_run": true}')
end
