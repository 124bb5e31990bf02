"""The PySide6 desktop viewer.

Modules, each with one job:
  codec_bridge -- the only module that imports ``app.codec`` (open files, weights status, decoders)
  playlist     -- which files next/previous steps through, in name order
  loader       -- turns a path into a document or an error message (the seam for a worker)
  qimage       -- numpy RGB -> QImage, on the GUI thread
  orientation  -- EXIF orientation -> QTransform
  describe     -- the window title and status-bar texts for a document
  image_view   -- the zoomable, pannable view of one document at full-resolution geometry
  tile_grid    -- which reconstructed tiles a view needs, nearest its centre first
  tile_cache   -- decoded tiles kept under a memory cap, least recently used dropped first
  reconstruction_worker -- the decoder on a worker thread: one job at a time, newest wins
  reconstruction -- zoom-triggered reconstruction: what to decode, the cache, the status
  window       -- the main window: menus, keys, navigation, status bar
  paths        -- where the bundled icon and samples are
  main         -- ``main(argv)``: the QApplication entry point
"""
