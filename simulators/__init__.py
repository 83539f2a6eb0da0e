"""Peers that tests and benchmarks run against Russet: simulated devices (and, later, Apple's services)."""
