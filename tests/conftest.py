"""Shared pytest configuration: fixture plugins for real servers on loopback."""
