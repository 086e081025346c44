-- GET /holds/{id} over holds made before the run: benchmarks/wrk.py passes the key, the path
-- prefix and a file with one hold id a line.
local prefix, ids, n = "", {}, 0

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  prefix = args[2]
  for line in io.lines(args[3]) do ids[#ids + 1] = line end
end

function request()
  n = n + 1
  return wrk.format("GET", prefix .. ids[n % #ids + 1])
end
