-- Scenario 1: a page of 20 issues of one assignee, with people and totalCount.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = function()
  local assignee = math.random(1, users)
  return post('{"query":"query($a: ID) { issues(first: 20, filter: {assignedTo: $a}) { totalCount nodes { id title status createdAt createdBy { username } assignedTo { username } } } }","variables":{"a":"' .. assignee .. '"}}')
end
