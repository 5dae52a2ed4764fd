"""What a run produces, written out: results files and tables, figures, Chrome traces, and
the summary of a topology (`sgdsim topology show`)."""
