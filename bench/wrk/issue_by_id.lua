-- Scenario 2: one issue by id.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = issue_by_id
