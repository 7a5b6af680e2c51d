-- Scenario 6: a mix. 80% reads (scenario 1 and 2 alike), 15% writes (creates and
-- updates alike), 5% logins.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = function()
  local r = math.random()
  if r < 0.40 then
    return issues_by_assignee()
  elseif r < 0.80 then
    return issue_by_id()
  elseif r < 0.875 then
    return create_issue()
  elseif r < 0.95 then
    return update_issue()
  end
  return login()
end
