"""Running the networks on real photos: where, how fast, with which weights.

device (CUDA / MPS / CPU) · runtime (torch fp32/bf16, ONNX Runtime decoders) · allocator (which
freed memory a decoding process keeps; torch-free, the viewer imports it) · calibration
(the fastest runtime here, measured once) · weights (files and their manifest) · inference
(tiled encoding and ``Reconstructor`` for any region) · adaptation (per-photo decoder offsets)
· detail_prior_int, detail_coding, detail_layer (the detail layer's exact integer prior, range
coder and lazy per-region decoding) · selfcheck (this installation's JPEG library as assumed).
Imports ``nets``, ``files`` and ``errors``; ``api`` is the door to all of it.
"""
