"""What the cluster learns: data sets, numpy models, the optimizer and its learning-rate
rules, the synchronisation schedules, and the replay of a schedule on real data."""
