"""The cluster engine: when each GPU computes and synchronises, in simulated seconds (SimPy
over the network model), and the cost profiles that charge the clock."""
