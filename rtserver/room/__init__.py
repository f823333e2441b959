"""The synchronous, I/O-free room: members, event log, presence, fan-out, snapshot, replay."""
