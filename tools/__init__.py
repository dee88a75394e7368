"""Developer tools of the workspace (not installed with any package)."""
