-- wrk script: follows tracked links as a browser would, cycling over the codes in $CODES_FILE.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do
  codes[#codes + 1] = line
end

request = function()
  sent = sent + 1
  local code = codes[(sent % #codes) + 1]
  return wrk.format("GET", "/c/" .. code, {
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) load-test",
    ["X-Forwarded-For"] = "198.51.100." .. (sent % 250),
  })
end
