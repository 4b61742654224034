"""Executors: the worker, pipelines, ONNX conversion, packaging, serving, batch scoring."""
