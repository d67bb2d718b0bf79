"""The engine that runs procedures on a bench, headless."""
