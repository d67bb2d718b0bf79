"""The bench GUI (PyQt6 + pyqtgraph): a client of the engine, the queue and the run store."""
