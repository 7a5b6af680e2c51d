-- Scenario 7: a page of 20 issues of one of the 20 PRIVATE projects user 1 is a member
-- of, with people and totalCount.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = issues_by_project
