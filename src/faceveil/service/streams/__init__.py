"""Server-side live streams: definitions in SQLite, workers in the server process, recordings."""
