"""The torch-free half of the codec: files, metadata and pixels in and out (numpy, Pillow, piexif).

marker (what a file says about its photo) · header (EXIF carry-over, XMP, payload segments) ·
reader / writer (a HyperThumbnail's JPEG) · document (what a viewer opens: any image) ·
xmp · payload (the APP11 records) · exif_edit, exif_tags, jpeg_segments, jpeg_orientation, ratings
(metadata edited in place, bounded work) · imageio (any image to uint8 RGB) · outputs (types a
decode may be saved as) · limits (the pixel budget) · atomic (temporary file + rename) ·
orientation (EXIF turns) · tiling (boxes, tiles, cancellation) · estimate (a file's size from
samples) · presets (the rate presets and tile sizes).

The viewer's window process may import anything here; nothing here imports torch or Qt.
"""
