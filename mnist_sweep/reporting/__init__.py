"""What runs after a search: the report's tables, Optuna's analysis of the trials, the plots."""
