"""The read model: built from the event topics into memory, persisted so a restart resumes."""
