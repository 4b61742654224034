"""The unmodified MLflow client against `ledger serve`, and the same against `mlflow server`."""
