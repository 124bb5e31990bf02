"""Rate-distortion evaluation: ``hyperthumb eval FOLDER``.

The pipeline, one module per step:

    images   -> the folder's photos, optionally centre-cropped (the fast mode)
    methods  -> each method turns a photo into bytes at each of its settings and decodes them
                (the HyperThumbnail codec, and standard baselines built with ``standard``)
    metrics  -> PSNR (RGB and luma), SSIM on luma, thumbnail PSNR
    runner   -> every photo x method x setting -> one result row
    summary  -> rows averaged into one rate-distortion curve per method, Bjontegaard deltas
                (``bjontegaard``) against the bicubic+JPEG anchor, the preset points
    report   -> results.csv, summary.json, summary.md, rd_plot.png (``plot``) and a table on stdout

All methods see the same pixels in the same run, so their curves can be compared directly.
"""
