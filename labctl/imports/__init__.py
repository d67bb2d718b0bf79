"""Other instruments' files (LAND, EC-Lab, Arbin, VersaStudio) read into labctl's store."""
