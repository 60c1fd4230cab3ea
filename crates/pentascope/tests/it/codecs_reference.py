"""Writes TIFFs of the codecs tifffile reads through imagecodecs beyond the
classic ones (LZMA, CCITT RLE / Group 3 / Group 4 in both fill orders,
WebP, JPEG 2000 in its TIFF and Aperio forms, JPEG XL, CMYK JPEG,
old-style JPEG) and, for each, tifffile's array in TZCYX order (raw, C
order, little-endian) and a manifest.json: file, expected, shape, dtype,
compression and the largest difference allowed (0 but for lossy codecs
that decode in floating point). Tifffile writes all but the CCITT files,
which Pillow writes through libtiff (tifffile has no CCITT encoder), and
the old-style JPEG file, which is tifffile's JPEG file with compression 6
and photometric RGB, as old writers left it."""
import json
import os
import sys

import numpy
import tifffile
from PIL import Image

out = sys.argv[1]
rng = numpy.random.default_rng(26)


def picture(height, width, samples=None, dtype=numpy.uint8):
    """Gradients, edges and noise scaled to the type's range."""
    y, x = numpy.mgrid[0:height, 0:width].astype(numpy.float64)
    planes = []
    for k in range(samples or 1):
        p = 0.5 + 0.3 * numpy.sin(x / (5.0 + 2 * k)) * numpy.cos(y / (7.0 + k))
        p += numpy.where((x // 13 + y // 11 + k) % 2 == 0, 0.15, -0.15)
        p += rng.normal(0, 0.05, (height, width))
        planes.append(numpy.clip(p, 0, 1) * numpy.iinfo(dtype).max)
    a = numpy.stack(planes, axis=-1) if samples else planes[0]
    return numpy.round(a).astype(dtype)


def bilevel(height, width):
    """Text-like strokes and noise: long runs and short ones."""
    y, x = numpy.mgrid[0:height, 0:width]
    a = ((x // 7 + y // 5) % 3 == 0) & ((y % 23) < 15)
    a ^= rng.random((height, width)) < 0.02
    a[10:30, 40:200] = True
    return a


files = []  # (name, tolerance)


def write(name, data, tolerance=0, **kwargs):
    tifffile.imwrite(os.path.join(out, name), data, **kwargs)
    files.append((name, tolerance))


# LZMA: a horizontal predictor on uint16 strips (and big-endian), the
# floating-point one on float32 tiles, RGB bytes
write('lzma_u16_predictor.tif', picture(75, 91, dtype=numpy.uint16)[None].repeat(3, 0),
      compression='lzma', predictor=True, rowsperstrip=16, photometric='minisblack',
      metadata={'axes': 'ZYX'})
write('lzma_f32_fpredictor_tiled.tif',
      picture(75, 91, dtype=numpy.uint16).astype(numpy.float32) / 7.5,
      compression='lzma', predictor=True, tile=(32, 48), photometric='minisblack')
write('lzma_rgb.tif', picture(75, 91, 3), compression='lzma', photometric='rgb')
write('lzma_u16_bigendian.tif', picture(75, 91, dtype=numpy.uint16), byteorder='>',
      compression='lzma', predictor=True, photometric='minisblack')

# WebP: lossy RGB in tiles (edge tiles padded), lossless RGBA in strips, and
# the older compression number
write('webp_rgb_lossy_tiled.tif', picture(75, 91, 3), compression='webp',
      compressionargs={'level': 80, 'lossless': False}, tile=(32, 48),
      photometric='rgb')
write('webp_rgba_lossless.tif', picture(75, 91, 4), compression='webp',
      compressionargs={'lossless': True}, rowsperstrip=32, photometric='rgb',
      extrasamples=['unassalpha'])
write('webp_34927_rgb.tif', picture(75, 91, 3), compression=34927,
      compressionargs={'level': 90, 'lossless': False}, photometric='rgb')

# JPEG 2000: lossless gray uint8 and uint16 (tiled), lossy uint16 (float
# wavelet: within one unit), RGB in separate planes, and Aperio's YCbCr (33003, component
# transform) and RGB (33005) forms of lossy RGB tiles
write('j2k_u8_gray.tif', picture(75, 91), compression='jpeg2000',
      compressionargs={'reversible': True}, rowsperstrip=40, photometric='minisblack')
write('j2k_u16_gray_tiled.tif', picture(75, 91, dtype=numpy.uint16),
      compression='jpeg2000', compressionargs={'reversible': True}, tile=(32, 48),
      photometric='minisblack')
write('j2k_u16_lossy.tif', picture(75, 91, dtype=numpy.uint16), tolerance=1,
      compression='jpeg2000', compressionargs={'level': 40, 'reversible': False},
      photometric='minisblack')
write('j2k_rgb_33003_ycbcr.tif', picture(75, 91, 3), compression=33003,
      compressionargs={'level': 40, 'reversible': False, 'mct': True}, tile=(32, 48),
      photometric='rgb')
write('j2k_rgb_planar.tif', picture(75, 91, 3).transpose(2, 0, 1).copy(),
      compression='jpeg2000', compressionargs={'reversible': True}, planarconfig='separate',
      photometric='rgb')
write('j2k_rgb_33005.tif', picture(75, 91, 3), compression=33005,
      compressionargs={'level': 40, 'reversible': False, 'mct': False}, tile=(32, 48),
      photometric='rgb')

# JPEG XL: lossy gray and RGB (floating-point rendering: within one unit),
# lossless uint16 gray, RGB and RGBA, tiles of 512×512 (within the decoder's
# memory budget), and DNG's compression number
write('jxl_gray_lossy.tif', picture(75, 91), tolerance=1, compression='jpegxl',
      compressionargs={'level': 90, 'lossless': False}, photometric='minisblack')
write('jxl_rgb_lossy_tiled.tif', picture(75, 91, 3), tolerance=1, compression='jpegxl',
      compressionargs={'level': 90, 'lossless': False}, tile=(32, 48), photometric='rgb')
write('jxl_u16_lossless.tif', picture(75, 91, dtype=numpy.uint16), compression='jpegxl',
      compressionargs={'lossless': True}, rowsperstrip=32, photometric='minisblack')
write('jxl_rgb_lossless.tif', picture(75, 91, 3), compression='jpegxl',
      compressionargs={'lossless': True}, photometric='rgb')
write('jxl_rgba_lossless.tif', picture(75, 91, 4), compression='jpegxl',
      compressionargs={'lossless': True}, photometric='rgb', extrasamples=['unassalpha'])
write('jxl_rgb_lossy_512_tiles.tif', picture(600, 700, 3), tolerance=1, compression='jpegxl',
      compressionargs={'level': 90, 'lossless': False}, tile=(512, 512), photometric='rgb')
write('jxl_u16_lossless_512_tiles.tif', picture(600, 700, dtype=numpy.uint16),
      compression='jpegxl', compressionargs={'lossless': True}, tile=(512, 512),
      photometric='minisblack')
write('jxl_52546_gray.tif', picture(75, 91), compression=52546,
      compressionargs={'lossless': True}, photometric='minisblack')

# JPEG: CMYK (photometric separated, four components, Adobe marker) and
# RGB in YCbCr with 4:4:4 and 4:2:2 chroma
write('jpeg_cmyk.tif', picture(75, 91, 4), compression='jpeg', photometric='separated',
      rowsperstrip=16)
write('jpeg_ycbcr_444.tif', picture(75, 91, 3), compression='jpeg', photometric='ycbcr',
      subsampling=(1, 1), tile=(32, 48))
write('jpeg_ycbcr_422.tif', picture(75, 91, 3), compression='jpeg', photometric='ycbcr',
      subsampling=(2, 1), rowsperstrip=16)

# old-style JPEG: the YCbCr file's strips are complete JPEG streams;
# compression 6 and photometric RGB, which tifffile (like libtiff) takes
# for YCbCr
write('ojpeg_rgb.tif', picture(75, 91, 3), compression='jpeg', photometric='ycbcr',
      subsampling=(2, 2), rowsperstrip=16)
with tifffile.TiffFile(os.path.join(out, 'ojpeg_rgb.tif'), mode='r+') as tif:
    tif.pages.first.tags['Compression'].overwrite(6)
    tif.pages.first.tags['PhotometricInterpretation'].overwrite(2)

# CCITT by libtiff: RLE, Group 3 one- and two-dimensional, with fill bits,
# Group 4; FillOrder 2 for Group 3 and Group 4; strips of 64 rows
bits = Image.fromarray(bilevel(203, 301))
for name, compression, info in [
    ('ccitt_rle.tif', 'tiff_ccitt', {}),
    ('ccitt_g3_1d.tif', 'group3', {}),
    ('ccitt_g3_2d.tif', 'group3', {292: 1}),
    ('ccitt_g3_2d_fill.tif', 'group3', {292: 5}),
    ('ccitt_g3_lsb.tif', 'group3', {266: 2}),
    ('ccitt_g4.tif', 'group4', {}),
    ('ccitt_g4_lsb.tif', 'group4', {266: 2}),
]:
    bits.save(os.path.join(out, name), compression=compression, tiffinfo=info,
              strip_size=64 * ((301 + 7) // 8))
    files.append((name, 0))


def canonical(series):
    """TZCYX, samples as channels, bilevel as uint8, little-endian."""
    data = series.asarray()
    if data.dtype == bool:
        data = data.astype(numpy.uint8)
    axes = series.axes.replace('S', 'C')
    for a in 'TZCYX':
        if a not in axes:
            data = data[numpy.newaxis]
            axes = a + axes
    data = numpy.transpose(data, [axes.index(a) for a in 'TZCYX'])
    return numpy.ascontiguousarray(data.astype(data.dtype.newbyteorder('<')))


manifest = []
for name, tolerance in files:
    path = os.path.join(out, name)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        data = canonical(tif.series[0])
        raw = path + '.tifffile.raw'
        data.tofile(raw)
        manifest.append(dict(
            file=path, expected=raw, shape=list(data.shape), dtype=str(data.dtype),
            compression=int(page.compression), tolerance=tolerance,
            tiled=page.is_tiled, chunks=len(page.dataoffsets),
            fillorder=int(page.fillorder), t4options=page.tags.valueof(292),
        ))
with open(os.path.join(out, 'manifest.json'), 'w') as f:
    json.dump(manifest, f, indent=1)
for m in manifest:
    print(os.path.basename(m['file']), m['shape'], m['dtype'], m['compression'],
          m['chunks'], m['fillorder'], m['t4options'])
