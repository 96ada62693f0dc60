//! Integration tests: real `terrace` processes on free loopback ports, real clients.
