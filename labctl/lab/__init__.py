"""One lab, several PCs: the lab config, the agents' link to run folders and live feeds, a desk's mirror of them."""
