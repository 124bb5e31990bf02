"""The PySide6 desktop viewer.

Flat on purpose: the rule that matters here (the window's process never imports torch; only
``codec_service``, which runs in the child process, imports ``app.codec.api``) is a module
boundary already, enforced by tests/test_import_boundaries.py. The other parts (service, zoom,
export, browsing) share Qt types and are wired together by ``window``, so sub-packages would only
add cross-package imports with no rule to keep. The list below is grouped by part instead.

Modules, each with one job:
  codec_bridge -- the viewer's door to the codec: opening files (``app.codec.files``, no torch) here; weights
                  status, decoders, export in the codec service. Other modules use only ``app.codec.files``
                  and ``app.codec.errors`` (tests/test_import_boundaries.py)
  service_client -- starts the codec service (a child process: the viewer's never imports torch), routes its answers
  codec_service -- the child process's side: lanes of requests, decoders and loaded photos kept by number
  service_wire -- the socket's frames: a pickled message, then raw pixel bytes
  playlist     -- which files next/previous steps through (sorting: by name, date taken or size); the
                  folders it came from, which the window watches (files added or removed appear or go)
  sorting      -- the playlist's orders: name, EXIF date taken (else modification time), file size
  loader       -- opens documents on worker threads, preloads the neighbours, keeps a small LRU
  newest_wins  -- the worker queue where each request replaces what was not started (loader, strip)
  qimage       -- numpy RGB -> QImage, on the GUI thread
  orientation  -- EXIF orientation -> QTransform
  rotation     -- rotate left/right as another EXIF orientation of the same document
  colour       -- an embedded ICC profile -> sRGB for display (QColorSpace)
  describe     -- the window title, status-bar and on-canvas indicator texts for a document
  units        -- one way to write sizes (kB, MB) and bits per pixel everywhere
  image_view   -- the zoomable, pannable view of one document at full-resolution geometry; the
                  indicator and the split comparison of preview and reconstruction
  tile_grid    -- which reconstructed tiles a view needs, grouped into pieces the decoder does in one go
  tile_cache   -- decoded tiles kept under a memory cap, least recently used dropped first
  reconstruction_worker -- asks the service for pieces on a worker thread: one job at a time, newest wins
  reconstruction -- zoom-triggered reconstruction: what to decode, the cache, the status
  export_worker -- one photo's size estimates and export on a worker thread (a cancel leaves no file)
  export_dialog -- File > Export as HyperThumbnail / Save As: rate, estimated size, destination, EXIF
  save_folder  -- where an export goes by default (never into the installation's samples)
  batch_export -- File > Export Folder as HyperThumbnails: one progress dialog, one summary
  time_left    -- "about 40 s left" on a long export, from the progress measured so far
  original     -- View > Compare With Original: an export's source beside it, opened as a plain image
  thumbnails   -- the thumbnail strip: pictures made lazily on a worker, visible items first
  metadata     -- the metadata panel's facts and words (capture line, rating, clipping, sizes, model, tables, EXIF)
  metadata_panel -- the metadata panel widget
  settings     -- every setting's key, type, default and range, in one table; garbled values read as defaults
  recent       -- File > Open Recent
  tools        -- the Edit menu: rotate, save the rotation, copy image/path, open folder, trash and undo
  rating_menu  -- Edit > Rating (keys 0-5) and Colour Label (6-9): written into the file's XMP, or a sidecar
  histogram    -- the metadata panel's histogram of the preview and its clipped highlights and shadows
  slideshow    -- View > Slideshow: the next image every few seconds, full screen without panels; Escape stops
  help_overlay -- F1 / ?: every key of every menu, over the image
  theme        -- Fusion and a dark palette for every part of the window
  drops        -- which local files and folders a drag carries
  window       -- the main window: menus, keys, navigation, docks, drops, full screen, status bar
  paths        -- where the bundled icon and samples are
  main         -- ``main(argv)``: the QApplication entry point
  measure      -- ``python -m app.viewer.measure``: the viewer's decode time against the codec's, pixel transfer costs
"""
