"""Online serving: ONNX Runtime sessions in Ray actor replicas, routed by traffic weights."""
