"""Writes TIFFs of the flavours and codecs pentascope reads that the
shared corpus lacks (JPEG in every layout, ImageJ past 4 GB, SCIFIO,
unlabelled size-1 axes, no PhotometricInterpretation, packed bits) with
tifffile, imagecodecs and Pillow and, for those and every file named after
the output folder, tifffile's array in TZCYX order (raw, C order,
little-endian) and a manifest.json describing them. Used by the core
reader's test and by the HTTP test."""
import io
import json
import os
import struct
import sys

import imagecodecs
import numpy
import tifffile
from PIL import Image

out = sys.argv[1]
rng = numpy.random.default_rng(1)


def picture(height, width, samples=None):
    """Gradients, edges and noise: every DCT coefficient gets some energy."""
    y, x = numpy.mgrid[0:height, 0:width].astype(numpy.float64)
    planes = []
    for k in range(samples or 1):
        p = 128 + 70 * numpy.sin(x / (5.0 + 2 * k)) * numpy.cos(y / (7.0 + k))
        p += numpy.where((x // 13 + y // 11 + k) % 2 == 0, 40, -40)
        p += rng.normal(0, 25, (height, width))
        planes.append(numpy.clip(p, 0, 255))
    a = numpy.stack(planes, axis=-1) if samples else planes[0]
    return a.astype(numpy.uint8)


def segments(jpeg):
    """(marker, whole segment bytes) up to and including SOS; then the rest."""
    i, out = 2, []
    while i < len(jpeg):
        assert jpeg[i] == 0xFF, i
        m = jpeg[i + 1]
        n = struct.unpack('>H', jpeg[i + 2:i + 4])[0]
        out.append((m, jpeg[i:i + 2 + n]))
        i += 2 + n
        if m == 0xDA:
            return out, jpeg[i:]
    raise ValueError('no SOS')


def renumber(m, seg):
    """Component identifiers 'R', 'G', 'B' (libjpeg's for RGB) as 0, 1, 2."""
    seg = bytearray(seg)
    ids = {0x52: 0, 0x47: 1, 0x42: 2}
    if m in (0xC0, 0xC1, 0xC2):
        for k in range(seg[9]):
            seg[10 + 3 * k] = ids.get(seg[10 + 3 * k], seg[10 + 3 * k])
    elif m == 0xDA:
        for k in range(seg[4]):
            seg[5 + 2 * k] = ids.get(seg[5 + 2 * k], seg[5 + 2 * k])
    return bytes(seg)


def abbreviate(jpeg, drop_app=False):
    """Tables-only stream (DQT, DHT) and the stream without them; with
    `drop_app`, also without APP markers (JFIF, Adobe) and with numbered
    components, as Aperio writes RGB."""
    segs, scan = segments(jpeg)
    if drop_app:
        segs = [(m, renumber(m, s)) for m, s in segs]
    tables = b''.join(s for m, s in segs if m in (0xDB, 0xC4))
    rest = b''.join(
        s for m, s in segs
        if m not in (0xDB, 0xC4) and not (drop_app and 0xE0 <= m <= 0xEF)
    )
    return b'\xff\xd8' + tables + b'\xff\xd9', b'\xff\xd8' + rest + scan


def chunks(image, tile=None, rows=None):
    """Tiles (edge tiles padded by repeating the edge) or strips."""
    h, w = image.shape[:2]
    if tile:
        th, tw = tile
        for y in range(0, h, th):
            for x in range(0, w, tw):
                t = image[y:y + th, x:x + tw]
                pad = [(0, th - t.shape[0]), (0, tw - t.shape[1])]
                pad += [(0, 0)] * (image.ndim - 2)
                yield numpy.pad(t, pad, mode='edge')
    else:
        for y in range(0, h, rows):
            yield image[y:y + rows]


def with_tables(name, image, encode, photometric, tile=None, rows=None,
                subsampling=None, drop_app=False):
    """Writes `image` as abbreviated JPEG chunks sharing JPEGTables."""
    tables, data = None, []
    for c in chunks(image, tile, rows):
        t, d = abbreviate(encode(c), drop_app)
        assert tables in (None, t), 'chunks with different tables'
        tables = t
        data.append(d)
    kwargs = dict(tile=tile) if tile else dict(rowsperstrip=rows)
    if subsampling:
        kwargs['subsampling'] = subsampling
    if photometric == 'rgb':
        kwargs['compressionargs'] = {'outcolorspace': 2}
    tifffile.imwrite(
        os.path.join(out, name), iter(data), shape=image.shape,
        dtype=numpy.uint8, compression='jpeg', photometric=photometric,
        jpegtables=tables, **kwargs,
    )


gray = picture(75, 97)
rgb = picture(90, 100, 3)
files = []


def write(name, data, **kwargs):
    tifffile.imwrite(os.path.join(out, name), data, **kwargs)
    files.append(os.path.join(out, name))


# whole JPEG streams in every chunk, as tifffile writes them
write('jpeg_gray_strips.tif', gray, compression='jpeg', rowsperstrip=16,
      photometric='minisblack')
write('jpeg_gray_tiles_3pages.tif', numpy.stack([gray, gray[::-1], 255 - gray]),
      compression='jpeg', tile=(32, 48), photometric='minisblack')
write('jpeg_ycbcr420_tiles.tif', rgb, compression='jpeg', tile=(32, 32),
      photometric='rgb')
write('jpeg_ycbcr422_strips.tif', rgb, compression='jpeg', rowsperstrip=16,
      photometric='ycbcr', subsampling=(2, 1))
write('jpeg_ycbcr444_strips.tif', rgb, compression='jpeg', rowsperstrip=24,
      photometric='ycbcr', subsampling=(1, 1))
write('jpeg_rgb_adobe_tiles.tif', rgb, compression='jpeg', tile=(32, 32),
      photometric='rgb', compressionargs={'outcolorspace': 2})
write('jpeg_rgb_planar.tif', numpy.moveaxis(rgb, -1, 0), compression='jpeg',
      rowsperstrip=32, photometric='rgb', planarconfig='separate')

# abbreviated chunks with JPEGTables, as libtiff writes them
def enc_gray(c):
    return imagecodecs.jpeg8_encode(c, level=85)

def enc_ycbcr(sub):
    return lambda c: imagecodecs.jpeg8_encode(
        c, level=85, colorspace='RGB', outcolorspace='YCBCR', subsampling=sub)

def enc_rgb(c):
    # RGB stored without colour conversion, as Aperio does
    return imagecodecs.jpeg8_encode(c, level=85, colorspace='RGB',
                                    outcolorspace='RGB')

for name, image, encode, photometric, layout in [
    ('tables_gray_strips.tif', gray, enc_gray, 'minisblack', dict(rows=16)),
    ('tables_gray_tiles.tif', gray, enc_gray, 'minisblack', dict(tile=(32, 32))),
    ('tables_ycbcr420_tiles.tif', rgb, enc_ycbcr('420'), 'ycbcr',
     dict(tile=(32, 32), subsampling=(2, 2))),
    ('tables_ycbcr422_strips.tif', rgb, enc_ycbcr('422'), 'ycbcr',
     dict(rows=16, subsampling=(2, 1))),
    ('tables_rgb_no_marker_tiles.tif', rgb, enc_rgb, 'rgb',
     dict(tile=(48, 32), drop_app=True)),
    ('tables_rgb_adobe_strips.tif', rgb, enc_rgb, 'rgb', dict(rows=32)),
]:
    with_tables(name, image, encode, photometric, **layout)
    files.append(os.path.join(out, name))

# whole streams from another encoder (Pillow's libjpeg): progressive scans
# (a DHT before each), restart markers, 4:2:0 and 4:4:4, JFIF (YCbCr) RGB
def enc_pillow(**options):
    def encode(c):
        b = io.BytesIO()
        Image.fromarray(c).save(b, 'JPEG', quality=85, **options)
        return b.getvalue()
    return encode

for name, image, encode, photometric, layout in [
    ('pillow_progressive_tiles.tif', rgb, enc_pillow(progressive=True, subsampling=2),
     'rgb', dict(tile=(32, 48))),
    ('pillow_restarts_strips.tif', rgb, enc_pillow(subsampling=0, restart_marker_rows=1),
     'rgb', dict(rowsperstrip=32)),
    ('pillow_progressive_gray_strips.tif', gray, enc_pillow(progressive=True),
     'minisblack', dict(rowsperstrip=16)),
]:
    tifffile.imwrite(
        os.path.join(out, name), iter([encode(c) for c in chunks(
            image, layout.get('tile'), layout.get('rowsperstrip'))]),
        shape=image.shape, dtype=numpy.uint8, compression='jpeg',
        photometric=photometric, **layout)
    files.append(os.path.join(out, name))

# an ImageJ hyperstack as ImageJ stores files past 4 GB: one IFD
hyper = rng.integers(0, 4096, (2, 3, 2, 20, 30), dtype=numpy.uint16)
write('imagej_truncated.tif', hyper, imagej=True, truncate=True,
      metadata={'axes': 'TZCYX'})

# SCIFIO (Fiji's ImageJ2 writer): ImageJ's keys under its own name
scifio = rng.integers(0, 60000, (3, 4, 2, 12, 14), dtype=numpy.uint16)
write('scifio_hyperstack.tif', scifio, photometric='minisblack',
      description='SCIFIO=0.45.0\nimages=24\nchannels=2\nslices=4\nframes=3\n'
                  'hyperstack=true\nmode=composite\n', metadata=None)

# tifffile's shaped description with unlabelled size-1 axes (QQQYX)
write('shaped_qqq.tif', rng.integers(0, 255, (6, 1, 1, 10, 12), dtype=numpy.uint8))


def without_photometric(name):
    """Renames the first IFD's PhotometricInterpretation to a private tag."""
    path = os.path.join(out, name)
    raw = bytearray(open(path, 'rb').read())
    ifd = struct.unpack_from('<I', raw, 4)[0]
    for k in range(struct.unpack_from('<H', raw, ifd)[0]):
        at = ifd + 2 + 12 * k
        if struct.unpack_from('<H', raw, at)[0] == 262:
            struct.pack_into('<H', raw, at, 65000)
    open(path, 'wb').write(raw)


write('no_photometric_gray.tif', picture(20, 24), photometric='minisblack')
without_photometric('no_photometric_gray.tif')
write('no_photometric_rgb.tif', picture(20, 24, 3), photometric='rgb')
without_photometric('no_photometric_rgb.tif')

# packed samples: 1 (bilevel), 2, 4 and 12 bits, widened to uint8/uint16
write('packed_1bit.tif', rng.integers(0, 2, (2, 13, 21)).astype(bool),
      photometric='minisblack')
for bits, dtype in [(2, numpy.uint8), (4, numpy.uint8), (12, numpy.uint16)]:
    write(f'packed_{bits}bit.tif',
          rng.integers(0, 1 << bits, (3, 11, 19)).astype(dtype),
          bitspersample=bits, photometric='minisblack')

# Aperio SVS layouts: the baseline (tiled), the thumbnail (stripped; here of
# the baseline's size, which must not make it a plane), a pyramid level,
# focal planes, then the label (NewSubfileType 1) and the macro (9)
APERIO = 'Aperio Image Library v12.0.15\r\n64x48 [0,0 64x48] (16x16) RAW|AppMag = 20|MPP = 0.4990'


def svs(name, focal_planes, thumbnail_size):
    # metadata=None: no shaped description, which tifffile would read first
    path = os.path.join(out, name)
    with tifffile.TiffWriter(path) as tif:
        base = [picture(48, 64, 3) for _ in range(focal_planes)]
        tif.write(base[0], tile=(16, 16), photometric='rgb', description=APERIO,
                  metadata=None)
        tif.write(picture(*thumbnail_size, 3), photometric='rgb', description='thumbnail', metadata=None)
        for plane in base[1:]:
            tif.write(plane, tile=(16, 16), photometric='rgb', description='focal plane', metadata=None)
        for _ in range(focal_planes):
            tif.write(picture(24, 32, 3), tile=(16, 16), photometric='rgb', description='level', metadata=None)
        tif.write(picture(10, 12, 3), photometric='rgb', subfiletype=1, description='label', metadata=None)
        tif.write(picture(14, 30, 3), photometric='rgb', subfiletype=9, description='macro', metadata=None)
    files.append(path)


svs('svs_thumbnail_of_baseline_size.svs', 1, (48, 64))
svs('svs_focal_planes.svs', 3, (12, 16))

LETTERS = 'TZC'


def canonical(series):
    """The series as pentascope presents it: TZCYX, samples as channels,
    unlabelled page axes lettered from the free ones among T, Z, C."""
    data = series.asarray()
    if data.dtype == bool:
        # 1-bit samples are widened to uint8
        data = data.astype(numpy.uint8)
    axes = series.axes
    if 'S' in axes:
        assert 'C' not in axes, axes
        axes = axes.replace('S', 'C')
    unlabelled = [a for a in axes if a in 'IQ']
    free = [a for a in LETTERS if a not in axes]
    if len(unlabelled) == 1 and 'Z' in free:
        free = ['Z']
    for a, b in zip(unlabelled, free):
        axes = axes.replace(a, b, 1)
    for a in 'TZCYX':
        if a not in axes:
            data = data[numpy.newaxis]
            axes = a + axes
    data = numpy.transpose(data, [axes.index(a) for a in 'TZCYX'])
    return numpy.ascontiguousarray(data.astype(data.dtype.newbyteorder('<')))


manifest = []
for path in files + sys.argv[2:]:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = tif.pages.first
        data = canonical(series)
        raw = os.path.join(out, os.path.basename(path) + '.tifffile.raw')
        data.tofile(raw)
        manifest.append(dict(
            file=path, expected=raw, shape=list(data.shape),
            dtype=str(data.dtype), pages=len(tif.pages),
            kind=series.kind, is_imagej=tif.is_imagej,
            compression=int(page.compression), photometric=int(page.photometric),
            jpegtables=page.jpegtables is not None, is_jfif=page.is_jfif,
            axes=series.axes,
        ))
with open(os.path.join(out, 'manifest.json'), 'w') as f:
    json.dump(manifest, f, indent=1)
for m in manifest:
    print(os.path.basename(m['file']), m['axes'], m['shape'], m['kind'],
          m['pages'], m['compression'], m['photometric'], m['jpegtables'],
          m['is_jfif'])
