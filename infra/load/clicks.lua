-- wrk script: follows tracked links as a browser would, cycling over the codes in $CODES_FILE.
local codes = {}
for line in io.lines(os.getenv("CODES_FILE")) do
  codes[#codes + 1] = line
end
local next_index = 0

request = function()
  next_index = next_index + 1
  local code = codes[(next_index % #codes) + 1]
  return wrk.format("GET", "/c/" .. code, {
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) load-test",
    ["X-Forwarded-For"] = "198.51.100." .. (next_index % 250),
  })
end
