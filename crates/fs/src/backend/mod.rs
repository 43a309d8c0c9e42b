//! The storage side of the file server: one trait beneath both protocol servers.
