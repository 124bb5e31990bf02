"""The HyperThumbnail codec: torch, numpy and Pillow only, never Qt.

Encoding (once, on export):
  photo file --imageio--> uint8 RGB --encoder (tiled, at thumbnail resolution)--> thumbnail
  --QPM (whole thumbnail)--> luma/chroma tables --fileformat--> baseline 4:4:4 JPEG whose DQT
  segments hold the tables and whose EXIF holds the HyperThumbnail marker.

Decoding (on every zoom):
  JPEG --fileformat--> decoded YCbCr + tables --inference.Reconstructor--> block DCT / tables
  = the file's quantized coefficients --decoder (tiled, any region)--> full-resolution pixels.

Training sees the same path with the file replaced by ``jpeg_sim`` (a differentiable JPEG)
and ``rate`` (a differentiable estimate of the file's size); ``model.HyperThumbnailModel``
ties the parts together. The viewer and CLI use only ``api`` (and ``document`` for previews).

Modules: color, dct, tables (JPEG maths) · jpeg_sim, rate (training stand-ins for the file) ·
layers, encoder, qpm, decoder, model (networks) · tiling, inference, device (running them) ·
imageio, fileformat, document, atomic, orientation (files) · weights (manifest) · api · errors.
"""
