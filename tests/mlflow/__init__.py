"""Importing an MLflow registry, against a real `mlflow server`."""
