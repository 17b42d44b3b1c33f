"""The scheduler service: APScheduler with its jobs stored in cloudmgr's database."""
