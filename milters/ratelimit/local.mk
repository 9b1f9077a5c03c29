# The ratelimit module and the quota rules it shares with policyd:
# filled in with the module.
TG_RATELIMIT_LIBS =
