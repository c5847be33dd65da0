"""Automation: monitored feeds, the watch folder (inbox) and signed webhooks."""
