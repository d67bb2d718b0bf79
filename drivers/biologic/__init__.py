"""BioLogic SP-200 through EClib (EC-Lab Development Package): ctypes layer, techniques, data parsers."""
