"""The web console at `/ui`: server-rendered pages over the same services as the admin API."""
