"""ML2 mechanism driver for the cloudmgr OpenStack lab."""
