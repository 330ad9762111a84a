-- Shared by fresh.lua and sessions.lua (loaded with dofile): wrk stops a run only when its -d
-- is over, even when every thread has stopped early, and then divides by the whole -d. These
-- scripts time their own requests instead (first request to last answer, CLOCK_MONOTONIC via
-- LuaJIT's FFI) and print "Measured-Requests/sec:", which bench/run prefers.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

function bench_now()
   ffi.C.clock_gettime(1, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local first, last, answered = nil, nil, 0
   for _, t in ipairs(threads) do
      local s, e = t:get("t_start"), t:get("t_end")
      if s and e then
         if not first or s < first then first = s end
         if not last or e > last then last = e end
         answered = answered + t:get("answered")
      end
   end
   if first and last > first then
      io.write(string.format("Measured-Requests/sec: %.2f (%d answered in %.2fs)\n",
                             answered / (last - first), answered, last - first))
   end
end
