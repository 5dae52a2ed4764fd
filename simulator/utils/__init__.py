"""The helpers at the bottom of the tree: errors, units, YAML and schemas, shipped files,
atomic writes. They import nothing else of sgdsim."""
