# tollgate-policyd: filled in with the daemon.
