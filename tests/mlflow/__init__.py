"""The MLflow REST API on `ledger serve` against the real MLflow client (and `mlflow server`
beside it), and importing an MLflow registry."""
