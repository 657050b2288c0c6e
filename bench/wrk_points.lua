-- wrk script: POSTs points requests of 500 rows to the sandbox, each with member ids of its
-- own (200 bodies of distinct ids, cycled), as a bulk job sends them.
--   wrk -t2 -c8 -d5s -s bench/wrk_points.lua URL/a/api/v2/micropanel/members/points -- KEY
local bodies = {}
local n = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["content-type"] = "application/json"
  wrk.headers["api-key"] = args[1] or "sandbox-questionpro-key"
  local offset = math.random(0, 90) * 1000000  -- ids stay within the sandbox panel (1..99,999,999)
  for b = 0, 199 do
    local rows = {}
    for i = 0, 499 do
      local id = offset + 1000000 + b * 500 + i
      rows[#rows + 1] = string.format('{"panelMemberID":%d,"points":%d,"comments":"Thanks"}', id, 1 + i % 7)
    end
    bodies[#bodies + 1] = "[" .. table.concat(rows, ",") .. "]"
  end
end

function request()
  n = n % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[n])
end

function response(status, headers, body)
  if status ~= 200 then
    wrk.thread:stop()
  end
end
