-- wrk script: POSTs one record per request to an HTTP-to-Kafka bridge's producer API (the
-- Strimzi Kafka Bridge's `POST /topics/{topic}`), cycling through request bodies read from
-- a file, one per line: `loadtest bench-pipeline` writes there the records the ingress
-- publishes, so both servers put the same bytes on Kafka.
--
--   wrk -t2 -c32 -d10s -s loadtest/wrk/kafka-bridge.lua http://127.0.0.1:8080 -- /topics/NAME BODIES

function init(args)
  path = args[1]
  bodies = {}
  for line in io.lines(args[2]) do
    bodies[#bodies + 1] = line
  end
  headers = { ["Content-Type"] = "application/vnd.kafka.json.v2+json" }
  counter = 0
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, bodies[counter % #bodies + 1])
end
