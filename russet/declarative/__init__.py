"""Declarative device management (issue #14): declarations, the device's DDM check-in, status."""
