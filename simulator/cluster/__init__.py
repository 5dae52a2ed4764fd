"""The cluster description: topology files (read, validate, write), generated topology
families, graph statistics and drawings. A topology is a networkx graph; this package knows
nothing of the network model that carries traffic over it."""
