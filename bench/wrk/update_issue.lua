-- Scenario 4: updateIssue changing the assignee, by the issue's creator.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = update_issue
