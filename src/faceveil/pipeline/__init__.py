"""End-to-end jobs built from the stages: read -> detect -> hide -> write."""
