-- POST /holds, each request naming a slot no other request of the run names: clinicians vary
-- fastest, then start times, then days. benchmarks/wrk.py passes the key, the appointment
-- type, the dates, the grid's size, the thread count and where in the sequence to begin (after
-- the slots of earlier runs, whose last requests may still be finishing): thread `first`
-- (report.lua's setup) takes every thread-count-th slot from there.
local key, kind, dates, clinicians, slots_per_day, step = "", "", {}, 0, 0, 15
local n, stride = 0, 1

function init(args)
  key, kind = args[1], args[2]
  for day in string.gmatch(args[3], "[^,]+") do dates[#dates + 1] = day end
  clinicians, slots_per_day = tonumber(args[4]), tonumber(args[5])
  n, stride = tonumber(args[7]) + (first or 0), tonumber(args[6])
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local clinician = n % clinicians
  local rest = math.floor(n / clinicians)
  local minute = (rest % slots_per_day) * step
  local day = dates[math.floor(rest / slots_per_day) % #dates + 1]
  n = n + stride
  local body = string.format(
    '{"appointment_type_id":"%s","clinician_id":"cli_00000000-0000-4000-8000-%012d",'
      .. '"date":"%s","start_time":"%02d:%02d"}',
    kind, clinician, day, math.floor(minute / 60), minute % 60)
  return wrk.format("POST", nil, nil, body)
end
