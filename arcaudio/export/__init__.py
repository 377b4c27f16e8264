"""Exports for edge devices: ONNX graphs (onnx_export.py, needs torch) and a runner that needs only numpy,
onnxruntime and, for a pre-trained T5, its tokenizer files (runner.py)."""
