-- Shared by the scenarios: the request of each (its query read from the .graphql file
-- beside this one), JSON POSTs to /graphql with a bearer token, and one summary line
-- that bench/src/bin/api.rs reads. A `RATE_LIMITED` answer counts as shed, not as an
-- error; any other response whose body carries GraphQL `errors`
-- counts as an error too, and the first error seen is printed as a sample.
--
-- Env: WRK_DIR (this folder), USERS, ISSUES, PROJECTS, TOKEN (user 1's access token), TOKENS (a
-- file of access tokens, one a line, user 1's first), PASSWORD (every seeded user's).
local dir = os.getenv("WRK_DIR") or "."
users = tonumber(os.getenv("USERS") or "1000")
issues = tonumber(os.getenv("ISSUES") or "100000")
local token = os.getenv("TOKEN") or ""
local password = os.getenv("PASSWORD") or ""

local tokens = {}
if os.getenv("TOKENS") then
  for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = line
  end
end

local queries = {}

-- The query in `name`.graphql on one line, escaped for a JSON string.
local function query(name)
  if not queries[name] then
    local file = assert(io.open(dir .. "/" .. name .. ".graphql"))
    local text = file:read("*a"):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
    file:close()
    queries[name] = text:gsub("\\", "\\\\"):gsub('"', '\\"')
  end
  return queries[name]
end

-- A POST of query `name` with `variables` (a JSON object), as the user of `bearer`
-- (user 1 unless given).
local function post(name, variables, bearer)
  local body = '{"query":"' .. query(name) .. '","variables":' .. variables .. "}"
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (bearer or token),
  }
  return wrk.format("POST", "/graphql", headers, body)
end

local function user()
  return math.random(1, users)
end

-- Scenario 1: a page of 20 issues of one assignee, with people and totalCount.
function issues_by_assignee()
  return post("issues_by_assignee", '{"a":"' .. user() .. '"}')
end

-- Scenario 7: a page of one of the PRIVATE projects (ids 2 to PROJECTS + 1).
local projects = tonumber(os.getenv("PROJECTS") or "20")
function issues_by_project()
  return post("issues_by_project", '{"p":"' .. math.random(2, projects + 1) .. '"}')
end

-- Scenario 2: one issue by id.
function issue_by_id()
  return post("issue_by_id", '{"id":"' .. math.random(1, issues) .. '"}')
end

-- Scenario 3: a random user opens an issue assigned to a random user.
function create_issue()
  return post("create_issue", '{"t":"Bench issue","a":"' .. user() .. '"}', tokens[user()])
end

-- Scenario 4: a random user reassigns one of the issues seeded as theirs (only the
-- creator may): seeded issue i has id i + 1 and creator i % users + 1.
function update_issue()
  local creator = user()
  local id = math.random(0, math.floor(issues / users) - 1) * users + creator
  return post("update_issue", '{"id":"' .. id .. '","a":"' .. user() .. '"}', tokens[creator])
end

-- Scenario 5: a random seeded user logs in (with the right password: every login
-- succeeds, so the per-account throttle never starts).
function login()
  return post("login", '{"u":"user' .. user() .. '","p":"' .. password .. '"}')
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

function init(args)
  graphql_errors = 0
  shed = 0
  -- Each thread its own sequence, or both would send the same requests in step.
  math.randomseed(os.time() * 100 + (thread_number or 0))
end

function response(status, headers, body)
  if status >= 400 then
    first_error = first_error or ("HTTP " .. status .. " " .. (body or ""):sub(1, 300))
  elseif body and string.find(body, '"RATE_LIMITED"', 1, true) then
    -- Shed at once (a login past TRIAGE_LOGIN_QUEUE_TIMEOUT): counted apart.
    shed = shed + 1
  elseif body and string.find(body, '"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
    first_error = first_error or body:sub(1, 300)
  end
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  local sample
  local shed_total = 0
  for _, thread in ipairs(threads) do
    errors = errors + (thread:get("graphql_errors") or 0)
    shed_total = shed_total + (thread:get("shed") or 0)
    sample = sample or thread:get("first_error")
  end
  io.write(string.format("RESULT requests_per_s=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d timeouts=%d shed=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors, summary.errors.timeout, shed_total))
  if sample then
    io.write("ERROR_SAMPLE " .. sample:gsub("%s+", " ") .. "\n")
  end
end
