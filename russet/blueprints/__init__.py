"""Blueprints: named desired states (profiles, settings, app refs) scoped to groups, and the
reconciler that keeps each device as its blueprints declare (issue #13 items 4, 5 and 7)."""
