"""The episode library: episode summaries and exports, deletes, review edits, approved-renders bundles."""
