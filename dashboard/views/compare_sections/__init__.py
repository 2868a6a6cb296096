"""Sections of the Compare page that both its views (runs one by one, and grouped by seed) show."""
