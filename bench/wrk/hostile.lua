-- Hostile requests, each refused before it runs: HOSTILE_KIND picks one kind, or
-- `all` (the default) sends them in turn. Every answer is an error by design, so the
-- RESULT line's error count is the number of refusals.
--
--   fragments  a chain of 40 fragments, each spreading the next twice (2^40 fields)
--   fanout     three nested assignedIssues(first: 100): a million nodes
--   aliases    21 aliased createIssue in one mutation
--   logins     two aliased logins in one request
--   deep       fields nested 40 deep
--   oversized  a 2 MiB body
dofile(os.getenv("WRK_DIR") .. "/common.lua")

local token = os.getenv("TOKEN") or ""

local function json_string(text)
  return '"' .. text:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", " ") .. '"'
end

local function body(query)
  return '{"query":' .. json_string(query) .. "}"
end

local function fragments()
  local parts = { "query { ...F0 }" }
  for level = 0, 39 do
    parts[#parts + 1] = string.format("fragment F%d on Query { ...F%d ...F%d }", level, level + 1, level + 1)
  end
  parts[#parts + 1] = "fragment F40 on Query { __typename }"
  return body(table.concat(parts, " "))
end

local function nested(levels, open, close, leaf)
  return string.rep(open, levels) .. leaf .. string.rep(close, levels)
end

local documents = {
  fragments = { body = fragments(), signed_in = false },
  fanout = {
    body = body("{ me { " .. nested(3, "assignedIssues(first: 100) { nodes { assignedTo { ", " } } } ", "id") .. " } }"),
    signed_in = true,
  },
  aliases = {
    body = (function()
      local fields = {}
      for i = 1, 21 do
        fields[#fields + 1] = string.format('i%d: createIssue(input: { title: "t%d" }) { issue { id } }', i, i)
      end
      return body("mutation { " .. table.concat(fields, " ") .. " }")
    end)(),
    signed_in = true,
  },
  logins = {
    body = body('mutation { a: login(input: { username: "user1", password: "x" }) { accessToken } '
      .. 'b: login(input: { username: "user1", password: "y" }) { accessToken } }'),
    signed_in = false,
  },
  deep = {
    body = body("{ me { " .. nested(14, "createdIssues { nodes { createdBy { ", " } } } ", "id") .. " } }"),
    signed_in = true,
  },
  oversized = { body = '{"query":"{ __typename }","pad":"' .. string.rep("x", 2 * 1024 * 1024) .. '"}', signed_in = false },
}

local order = { "fragments", "fanout", "aliases", "logins", "deep", "oversized" }
local kind = os.getenv("HOSTILE_KIND") or "all"
local turn = 0

request = function()
  local name = kind
  if kind == "all" then
    turn = turn % #order + 1
    name = order[turn]
  end
  local document = assert(documents[name], "unknown HOSTILE_KIND " .. name)
  local headers = { ["Content-Type"] = "application/json" }
  if document.signed_in then
    headers["Authorization"] = "Bearer " .. token
  end
  return wrk.format("POST", "/graphql", headers, document.body)
end
