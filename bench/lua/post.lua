-- POST with the body given after `--` (headers from -H).
function init(args)
  wrk.method = "POST"
  wrk.body = args[1]
end
