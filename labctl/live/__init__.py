"""A run's live stream and the in-memory state views draw from; no Qt here."""
