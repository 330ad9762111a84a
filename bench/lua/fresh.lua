-- listener_add with a different ticket and client id in every request, the body escaped the
-- way Icecast 2.4.4 escapes it (every byte but [A-Za-z0-9] as %xx). BENCH_TICKETS is a file of
-- tickets, one a line; thread k of n takes lines k, k+n, k+2n, ... and stops once each of its
-- tickets has been answered, so no ticket is sent twice (the run lasts as long as the tickets
-- do, at most wrk's -d). BENCH_EVENT is the event id.
dofile(os.getenv("BENCH_LUA_DIR") .. "/clock.lua")  -- setup(), done(), bench_now()

local function esc(s)
   return (s:gsub("[^%w]", function(c) return string.format("%%%02x", c:byte()) end))
end

function init(args)
   local total = tonumber(os.getenv("BENCH_THREADS") or "1")
   tickets = {}
   local i = 0
   for line in io.lines(os.getenv("BENCH_TICKETS")) do
      if i % total == id - 1 then
         tickets[#tickets + 1] = esc(line)
      end
      i = i + 1
   end
   next_ticket = 1
   answered = 0
   next_client = id * 10000000
   prefix = "action=listener_add&server=localhost&port=8000&client="
   mount = "&mount=" .. esc("/" .. os.getenv("BENCH_EVENT") .. ".mp3?token=")
   suffix = "&user=&pass=&ip=" .. esc("127.0.0.1") .. "&agent=" .. esc("VLC/3.0.18 LibVLC/3.0.18")
      .. "&ClientHeader.referer=" .. esc("https://radio.example.org/player")
   headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   local authorization = os.getenv("BENCH_AUTHORIZATION") or ""
   if authorization ~= "" then headers["Authorization"] = authorization end
end

function request()
   if not t_start then t_start = bench_now() end
   local t = tickets[next_ticket]
   next_ticket = next_ticket + 1
   if next_ticket > #tickets then next_ticket = 1 end
   next_client = next_client + 1
   return wrk.format("POST", "/icecast/auth", headers,
                     prefix .. next_client .. mount .. t .. suffix)
end

function response(status, headers, body)
   answered = answered + 1
   t_end = bench_now()
   if answered >= #tickets then
      wrk.thread:stop()
   end
end
