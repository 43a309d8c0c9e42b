//! 9P2000.L: the wire format and the server.
