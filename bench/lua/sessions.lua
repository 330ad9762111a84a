-- listener_add on a public event, each request a new listener (a new Icecast client id),
-- until BENCH_SESSIONS sessions have been opened in all; then the thread stops. Thread k of n
-- opens BENCH_SESSIONS / n of them. BENCH_EVENT is the event id. Escaped as Icecast does.
dofile(os.getenv("BENCH_LUA_DIR") .. "/clock.lua")  -- setup(), done(), bench_now()

local function esc(s)
   return (s:gsub("[^%w]", function(c) return string.format("%%%02x", c:byte()) end))
end

function init(args)
   local total = tonumber(os.getenv("BENCH_THREADS") or "1")
   quota = math.floor(tonumber(os.getenv("BENCH_SESSIONS")) / total)
   base = id * 10000000
   sent = 0
   answered = 0
   prefix = "action=listener_add&server=localhost&port=8000&client="
   suffix = "&mount=" .. esc("/" .. os.getenv("BENCH_EVENT") .. ".mp3")
      .. "&user=&pass=&ip=" .. esc("127.0.0.1") .. "&agent=" .. esc("VLC/3.0.18 LibVLC/3.0.18")
      .. "&ClientHeader.referer=" .. esc("https://radio.example.org/player")
   headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   local authorization = os.getenv("BENCH_AUTHORIZATION") or ""
   if authorization ~= "" then headers["Authorization"] = authorization end
end

function request()
   if not t_start then t_start = bench_now() end
   -- Past the quota, repeat the first client: an existing session, nothing new is opened.
   local client = base
   if sent < quota then
      client = base + sent
      sent = sent + 1
   end
   return wrk.format("POST", "/icecast/auth", headers, prefix .. client .. suffix)
end

function response(status, headers, body)
   answered = answered + 1
   t_end = bench_now()
   if answered >= quota then
      wrk.thread:stop()
   end
end
