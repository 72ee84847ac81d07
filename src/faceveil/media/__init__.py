"""Reading and writing media files (photos now; video later)."""
