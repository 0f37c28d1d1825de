-- POST /api/token/refresh/ with the next refresh token of this thread's pool:
-- the file `<prefix>.<thread number>` (prefix given after `--`), one token a
-- line, each used once, since rotation with blacklist spends a token on use.
local counter = 0
function setup(thread)
  thread:set("thread_no", counter)
  counter = counter + 1
end

local tokens = {}
local next_token = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1] .. "." .. thread_no) do
    tokens[#tokens + 1] = line
  end
end

function request()
  next_token = next_token + 1
  -- Past the end of the pool the request fails (401) and shows as an error.
  local token = tokens[next_token] or "pool-exhausted"
  return wrk.format("POST", "/api/token/refresh/", headers, '{"refresh":"' .. token .. '"}')
end
