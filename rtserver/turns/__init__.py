"""Turns: what runs when, from a client's frame to the generations it starts."""
