//! ScanImage BigTIFF: the frame header (and ROI groups) ScanImage writes
//! after the TIFF header.

use super::*;

/// The non-varying frame data of a ScanImage BigTIFF (v3/v4), stored right
/// after the 16-byte header, and its ROI groups (JSON) after that, where
/// they lie within the header's bytes read.
pub(crate) fn header(header: &[u8]) -> Option<(String, Option<String>)> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(header.get(i..i + 4)?.try_into().ok()?))
    };
    if header.get(0..2)? != b"II" || word(16)? != 0x0703_0301 || !(3..=4).contains(&word(20)?) {
        return None;
    }
    let size = word(24)? as usize;
    let text = header.get(32..32usize.checked_add(size)?)?;
    let rois = word(28).and_then(|len| {
        let start = 32 + size;
        header.get(start..start.checked_add(len as usize)?)
    });
    Some((
        String::from_utf8_lossy(text).into_owned(),
        rois.map(|r| String::from_utf8_lossy(r).into_owned()),
    ))
}

pub(crate) fn interpret(chain: &IfdChain, text: &str) -> Result<Interpretation, String> {
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let saved = value("SI.hChannels.channelSave").ok_or("no SI.hChannels.channelSave")?;
    let channels = saved
        .trim_matches(|c| c == '[' || c == ']')
        .split([';', ' ', ','])
        .filter(|s| !s.is_empty())
        .count()
        .max(1) as u64;
    let pages = first_kind_pages(chain);
    let n = pages.len() as u64;
    let frames = match value("SI.hStackManager.framesPerSlice").map(|v| v.parse::<u64>()) {
        Some(Ok(f)) if f > 0 => f,
        _ => {
            if !n.is_multiple_of(channels) {
                return Err("unable to determine framesPerSlice".into());
            }
            n / channels
        }
    };
    let per_slice = frames
        .checked_mul(channels)
        .filter(|p| (1..=n).contains(p))
        .ok_or_else(|| {
            format!("framesPerSlice {frames} × {channels} channels does not fit the {n} pages")
        })?;
    let slices = n / per_slice;
    if slices * per_slice != n {
        return Err(format!(
            "{n} pages do not split into {slices} slices × {frames} frames × {channels} channels"
        ));
    }
    // ScanImage states the Z step in micrometers (the actual one once a
    // stack has been acquired, `[]` before) and the frame period in seconds;
    // the pixel size depends on the scanner's field of view and is not read
    let size = |key: &str, unit: &str| {
        value(key)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0 && v.is_finite())
            .map(|value| PhysicalSize {
                value,
                unit: unit.to_string(),
            })
    };
    let physical = PhysicalSizes {
        z: (slices > 1)
            .then(|| {
                size("SI.hStackManager.actualStackZStepSize", "micrometer")
                    .or_else(|| size("SI.hStackManager.stackZStepSize", "micrometer"))
            })
            .flatten(),
        t: (frames > 1)
            .then(|| size("SI.hRoiManager.scanFramePeriod", "second"))
            .flatten(),
        ..PhysicalSizes::default()
    };
    Ok(Interpretation::of_pages(
        Flavour::ScanImage,
        vec![('Z', slices), ('T', frames), ('C', channels)],
        pages.into_iter().map(Some).collect(),
        physical,
    )
    .squeezed())
}
