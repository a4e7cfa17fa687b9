-- wrk script: POSTs valid booking creates, each under a fresh Idempotency-Key, with the
-- partner's bearer key, spread over 200 properties of tenant `bench`.
--
--   wrk -t2 -c32 -d10s -s loadtest/wrk/booking.lua http://127.0.0.1:8080 -- RUN_ID PARTNER_KEY
--
-- Every wrk thread runs its own Lua state: setup() gives each a number, so keys stay
-- distinct across threads; RUN_ID keeps them distinct across runs.

local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  prefix = (args[1] or tostring(os.time())) .. "-wrk" .. tostring(id or 0)
  bearer = "Bearer " .. (args[2] or "demo-ota-1-secret")
  counter = 0
end

function request()
  counter = counter + 1
  local property = counter % 200
  local nights = 1 + property % 3
  local day = 1 + property % 25
  local body = string.format(
    '{"tenant_id":"bench","property_id":"p%04d","room_type":"DBL","check_in":"2031-03-%02d",'
      .. '"check_out":"2031-03-%02d","rooms":1,"guests":2,"amount_minor":%d,"currency":"EUR",'
      .. '"guest_name":"Load Test"}',
    property, day, day + nights, 11000 * nights)
  local headers = {
    ["Authorization"] = bearer,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }
  return wrk.format("POST", "/v1/bookings", headers, body)
end
