//! Providers: capability traits and the clients of the remote services.
