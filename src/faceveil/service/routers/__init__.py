"""One router per resource: health, auth, photos, jobs, live, pages, docs."""
