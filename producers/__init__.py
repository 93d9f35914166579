"""Producers: poll the Hub and GitHub and publish events (see hubwatch.events)."""
