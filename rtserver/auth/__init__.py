"""Who may join and act in a room, from which pages, and how much each client may spend."""
