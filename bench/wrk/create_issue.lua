-- Scenario 3: createIssue with an assignee (each also writes the assignee's notice).
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = create_issue
