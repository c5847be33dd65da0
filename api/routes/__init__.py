"""One router per resource: jobs, episodes (submit included), clips, events, operations."""
