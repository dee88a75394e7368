"""The document feed: every readable model as one document, in change order, for assistants and sync."""
