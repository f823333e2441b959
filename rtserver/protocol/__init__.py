"""Pure protocol: bytes <-> typed frames, with no I/O and no clock."""
