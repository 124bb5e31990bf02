"""The HyperThumbnail codec: never Qt. Three packages, each importing only those above it:

  errors   every error a user can cause, as one readable line (no dependencies)
  files    torch-free: what a file is and how it is read, checked and written -- the marker,
           header (EXIF carry-over, XMP, payload), JPEG segments, images in and out, limits,
           atomic writes, orientation, tile geometry, the presets. The viewer's window imports
           only this package (and ``errors``), so showing a file never waits for torch.
  nets     the networks and their differentiable stand-ins for the file: colour, DCT, JPEG
           tables and simulation, rate estimate, encoder, QPM, decoder, detail layer, model.
  engine   running the networks on photos: device, decoder runtimes and their calibration,
           weights and their manifest, tiled inference, per-photo adaptation, the detail
           layer's integer prior and range coder, the installation selfcheck.
  api      the door: ``Codec`` (open, preview, decode a region, encode, estimate a size).
           The CLI, the viewer's codec service and the evaluation use it.

Encoding (once, on export):
  photo --files.imageio--> uint8 RGB --engine.inference (nets.encoder, tiled)--> thumbnail
  --nets.qpm--> luma/chroma tables --files.writer--> baseline 4:4:4 JPEG with the tables in its
  DQT segments and the marker (and the adaptation/detail payload) in its header.

Decoding (on every zoom):
  JPEG --files.reader--> decoded YCbCr + tables --engine.inference.Reconstructor--> the file's
  quantized coefficients --nets.decoder (tiled, any region)--> full-resolution pixels; with a
  detail layer, engine.detail_layer decodes its latent per region first.

Training sees the same path with the file replaced by ``nets.jpeg_sim`` (a differentiable JPEG)
and ``nets.rate`` (a differentiable estimate of the file's size); ``nets.model`` ties them up.
tests/test_import_boundaries.py enforces the layering.
"""
