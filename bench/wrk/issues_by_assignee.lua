-- Scenario 1: a page of 20 issues of one assignee, with people and totalCount.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = issues_by_assignee
