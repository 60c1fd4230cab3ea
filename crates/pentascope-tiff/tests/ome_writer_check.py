"""Reads the OME-TIFFs that tests/ome_writer.rs wrote with tifffile and
compares them with what was written (manifest.json and one .raw of little-endian samples each).

Run by that test when PENTASCOPE_TEST_PYTHON names a Python with tifffile
and numpy; or by hand: python ome_writer_check.py DIR
"""

import json
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy
import tifffile

OME = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"


def check(directory: Path, case: dict) -> None:
    name = case["file"]
    shape = tuple(case["shape"])
    expected = numpy.fromfile(
        directory / case["expected"], dtype=numpy.dtype(case["dtype"]).newbyteorder("<")
    ).reshape(shape)
    assert expected.shape == shape, (name, expected.shape, shape)
    with tifffile.TiffFile(directory / name) as tif:
        assert tif.is_ome, f"{name}: not recognised as OME-TIFF"
        assert tif.is_bigtiff == case["bigtiff"], name
        assert len(tif.series) == 1, (name, len(tif.series))
        series = tif.series[0]
        assert series.kind.lower() == "ome", (name, series.kind)
        # tifffile squeezes size-1 axes; unsqueezed it is TZCYX plus S=1
        full_axes = series.get_axes(False)
        full_shape = series.get_shape(False)
        assert full_axes == "TZCYXS", (name, full_axes)
        assert tuple(full_shape) == (*shape, 1), (name, full_shape)
        squeezed = "".join(
            a for a, n in zip("TZCYX", shape) if n != 1 or a in "YX"
        )
        assert series.axes == squeezed, (name, series.axes, squeezed)
        assert series.dtype == numpy.dtype(case["dtype"]), (name, series.dtype)
        data = series.asarray().reshape(shape)
        assert data.dtype == expected.dtype, name
        # bit for bit: NaN payloads and negative zeros included
        assert data.tobytes() == expected.tobytes(), f"{name}: samples differ"
        page = tif.pages.first
        assert page.software == "pentascope", (name, page.software)

        root = ElementTree.fromstring(tif.ome_metadata)
        image = root.find(f"{OME}Image")
        assert image.get("Name", "") == case["name"], name
        pixels = image.find(f"{OME}Pixels")
        names = [c.get("Name", "") for c in pixels.findall(f"{OME}Channel")]
        assert names == case["channel_names"], (name, names)
        description = image.find(f"{OME}Description")
        assert (description.text if description is not None else None) == case["description"], name
        # the annotations the image refers to, as OMERO and tifffile's users read them
        refs = {r.get("ID") for r in image.findall(f"{OME}AnnotationRef")}
        annotations = root.find(f"{OME}StructuredAnnotations")
        found = [] if annotations is None else [a for a in annotations if a.get("ID") in refs]
        tags = [a.find(f"{OME}Value").text for a in found if a.tag == f"{OME}TagAnnotation"]
        assert tags == case["tags"], (name, tags)
        pairs = [
            [m.get("K"), m.text or ""]
            for a in found
            if a.tag == f"{OME}MapAnnotation"
            for m in a.find(f"{OME}Value").findall(f"{OME}M")
        ]
        assert pairs == [list(p) for p in case["annotations"]], (name, pairs)
        for axis, attr in [
            ("x", "PhysicalSizeX"),
            ("y", "PhysicalSizeY"),
            ("z", "PhysicalSizeZ"),
            ("t", "TimeIncrement"),
        ]:
            want = case["physical_sizes"][axis]
            got = pixels.get(attr)
            if want is None:
                assert got is None, (name, attr, got)
            else:
                assert float(got) == want["value"], (name, attr, got, want)
                assert pixels.get(attr + "Unit") == want["unit"], (name, attr)


def main() -> None:
    directory = Path(sys.argv[1])
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest, "empty manifest"
    for case in manifest:
        check(directory, case)
    print(
        f"tifffile {tifffile.__version__}: {len(manifest)} OME-TIFFs read back "
        "with identical shape, dtype, samples and metadata"
    )


if __name__ == "__main__":
    main()
