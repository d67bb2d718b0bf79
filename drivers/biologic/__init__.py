"""BioLogic SP-200 through EClib (EC-Lab Development Package): ctypes layer, techniques, data parsers, the bridge."""

MIN_TOKEN_CHARS = 8  # the bridge's shared secret: shorter is guessed too easily on a lab network (bench files check it)
