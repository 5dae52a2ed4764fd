"""The network model: routes, max-min fair sharing, transfers as flows in SimPy, and the
all-reduce collectives built from them."""
