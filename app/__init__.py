"""HyperThumbnail Viewer: JPEG thumbnails that carry a full-resolution photo.

Sub-packages:
  codec     -- the learned codec (torch, numpy, Pillow; never Qt): models, file format,
               tiled inference and the small API the viewer and CLI use.
  viewer    -- the PySide6 desktop viewer; talks to the codec only through ``app.codec.api``.
  training  -- data preparation and the training loop.
  cli       -- the ``hyperthumb`` command.
"""

__version__ = "0.1.0"
