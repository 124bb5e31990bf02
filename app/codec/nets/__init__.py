"""The networks (torch): what is trained, and the differentiable stand-ins for the file.

color, dct, tables (JPEG maths) · jpeg_sim (a differentiable JPEG) · rate (its size estimate) ·
layers · encoder (photo -> thumbnail) · qpm (the thumbnail's quantization tables) · decoder
(thumbnail -> photo) · detail (the detail layer's analysis, prior and rate gains) · model
(``HyperThumbnailModel``: all of them, as trained). Imports ``files`` and ``errors`` only.
"""
