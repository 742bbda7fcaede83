"""`make bench`: Omnihub started as a user starts it, measured against local fakes."""
