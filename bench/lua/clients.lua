-- BENCH_BODY (a listener_add with `client=1`), each request as a new listener: the client id
-- counts up (thread k from BENCH_CLIENT_BASE + k * 10,000,000), as Icecast numbers its clients,
-- so each request opens a session of its own; bench/run moves the base on for every run, so
-- that no run reuses an earlier run's ids (as only a restarted Icecast does).
local body = os.getenv("BENCH_BODY") or ""
local prefix, suffix = body:match("^(.-client=)1(&.*)$")
assert(prefix, "BENCH_BODY has no client=1 field")
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local authorization = os.getenv("BENCH_AUTHORIZATION") or ""
if authorization ~= "" then headers["Authorization"] = authorization end
local path = os.getenv("BENCH_PATH") or "/icecast/auth"

local threads = 0
function setup(thread)
   threads = threads + 1
   thread:set("id", threads)
end

function init(args)
   next_client = (tonumber(os.getenv("BENCH_CLIENT_BASE")) or 0) + id * 10000000
end

function request()
   next_client = next_client + 1
   return wrk.format("POST", path, headers, prefix .. next_client .. suffix)
end
