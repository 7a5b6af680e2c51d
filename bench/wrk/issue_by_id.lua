-- Scenario 2: one issue by id.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = function()
  local id = math.random(1, issues)
  return post('{"query":"query($id: ID!) { issue(id: $id) { id title status createdAt } }","variables":{"id":"' .. id .. '"}}')
end
