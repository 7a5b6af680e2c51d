-- Shared by the scenarios: JSON POSTs to /graphql with the bearer token from $TOKEN,
-- and one summary line that bench/src/bin/api.rs reads.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")

users = tonumber(os.getenv("USERS") or "1000")
issues = tonumber(os.getenv("ISSUES") or "100000")

function post(body)
  return wrk.format(nil, "/graphql", nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
