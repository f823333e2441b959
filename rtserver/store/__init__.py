"""Persistence of rooms and their messages."""
