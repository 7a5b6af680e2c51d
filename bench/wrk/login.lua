-- Scenario 5: login with a seeded user's username and password.
dofile(os.getenv("WRK_DIR") .. "/common.lua")
request = login
