"""Tools the server runs for a model: Python functions and MCP servers behind one interface."""
