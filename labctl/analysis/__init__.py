"""Analysis shared by live runs and offline commands."""
