-- One fixed form POST, the same bytes every time: BENCH_PATH and BENCH_BODY from the
-- environment. wrk builds the request once, so the client costs as little as it can.
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/icecast/auth"
wrk.body = os.getenv("BENCH_BODY") or ""
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
-- Icecast's callback credentials (bench/run configures jars to check them), if given.
local authorization = os.getenv("BENCH_AUTHORIZATION") or ""
if authorization ~= "" then wrk.headers["Authorization"] = authorization end
