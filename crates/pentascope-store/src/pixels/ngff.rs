//! OME-NGFF 0.5 metadata and the mapping between pentascope's sample
//! types and Zarr data types.

use pentascope_core::DType;

use super::traits::ImageAttributes;

pub(super) fn zarr_type(dtype: DType) -> zarrs::array::DataType {
    use zarrs::array::data_type as dt;
    match dtype {
        DType::U8 => dt::uint8(),
        DType::U16 => dt::uint16(),
        DType::U32 => dt::uint32(),
        DType::U64 => dt::uint64(),
        DType::I8 => dt::int8(),
        DType::I16 => dt::int16(),
        DType::I32 => dt::int32(),
        DType::I64 => dt::int64(),
        DType::F16 => dt::float16(),
        DType::F32 => dt::float32(),
        DType::F64 => dt::float64(),
    }
}

pub(super) fn dtype_of(data_type: &zarrs::array::DataType) -> Option<DType> {
    DType::ALL.into_iter().find(|d| zarr_type(*d) == *data_type)
}

/// UDUNITS-2 names, as NGFF requires, for the units files commonly use.
fn ngff_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "µm" | "um" | "micron" | "micrometer" | "\u{3bc}m" => "micrometer",
        "nm" | "nanometer" => "nanometer",
        "mm" | "millimeter" => "millimeter",
        "cm" | "centimeter" => "centimeter",
        "m" | "meter" => "meter",
        "Å" | "angstrom" => "angstrom",
        "inch" | "in" => "inch",
        "s" | "sec" | "second" => "second",
        "ms" | "millisecond" => "millisecond",
        "min" | "minute" => "minute",
        "h" | "hour" => "hour",
        _ => return None,
    })
}

/// The `zarr.json` of an image's group with `levels` downsampled levels:
/// NGFF 0.5 attributes.
pub fn group_json(attrs: &ImageAttributes, levels: u32) -> serde_json::Value {
    serde_json::json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": ngff_attributes(attrs, levels),
    })
}

/// The `zarr.json` of one level of an uncompressed array of `shape`
/// (canonical) in NGFF's order, in chunks of `[rows, columns]` of one
/// plane: what derived images whose planes are computed on request are
/// served as.
pub fn plane_array_json(
    shape: pentascope_core::Shape5,
    dtype: DType,
    [rows, columns]: [u64; 2],
) -> serde_json::Value {
    serde_json::json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [shape.t, shape.c, shape.z, shape.y, shape.x],
        "data_type": dtype.name(),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1, 1, rows, columns]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "dimension_names": ["t", "c", "z", "y", "x"],
        "attributes": {},
    })
}

pub(super) fn ngff_attributes(attrs: &ImageAttributes, levels: u32) -> serde_json::Value {
    use serde_json::json;
    let p = &attrs.physical_sizes;
    let axis = |name: &str, kind: &str, size: &Option<pentascope_tiff::PhysicalSize>| {
        let mut a = json!({"name": name, "type": kind});
        if let Some(unit) = size.as_ref().and_then(|s| ngff_unit(&s.unit)) {
            a["unit"] = json!(unit);
        }
        a
    };
    let scale_of = |size: &Option<pentascope_tiff::PhysicalSize>| {
        size.as_ref()
            .filter(|s| s.value.is_finite() && s.value > 0.0)
            .map_or(1.0, |s| s.value)
    };
    let mut ome = json!({
        "version": "0.5",
        "multiscales": [{
            "name": attrs.name,
            // NGFF's order: time, channel, then space
            "axes": [
                axis("t", "time", &p.t),
                {"name": "c", "type": "channel"},
                axis("z", "space", &p.z),
                axis("y", "space", &p.y),
                axis("x", "space", &p.x),
            ],
            // level k: each pixel spans 2^k full-resolution pixels in y, x
            "datasets": (0..=levels).map(|k| {
                let f = 2f64.powi(k as i32);
                json!({
                    "path": k.to_string(),
                    "coordinateTransformations": [{
                        "type": "scale",
                        "scale": [scale_of(&p.t), 1.0, scale_of(&p.z), f * scale_of(&p.y), f * scale_of(&p.x)],
                    }],
                })
            }).collect::<Vec<_>>(),
        }],
    });
    if !attrs.channel_names.is_empty() {
        ome["omero"] = json!({
            "channels": attrs.channel_names.iter().map(|n| json!({"label": n})).collect::<Vec<_>>()
        });
    }
    json!({ "ome": ome })
}
