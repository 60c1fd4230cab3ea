//! ImageJ hyperstacks (`ImageJ=` and SCIFIO's `SCIFIO=` descriptions):
//! `images=`, `channels=`, `slices=`, `frames=`, calibration, display
//! ranges and LUTs from the binary IJMetadata.

use super::*;

pub(crate) fn interpret(
    chain: &IfdChain,
    desc: &str,
    limits: &Limits,
) -> Result<Interpretation, Rejection> {
    let value = |key: &str| {
        desc.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
    };
    let count = |key: &str| -> Result<u64, String> {
        value(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{key}={v} is not a count"))
            })
            .transpose()
            .map(|v| v.unwrap_or(1))
    };
    let (channels, slices, frames) = (count("channels")?, count("slices")?, count("frames")?);
    let pages = first_kind_pages(chain);
    let images = value("images")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(pages.len() as u64);
    if channels
        .checked_mul(slices)
        .and_then(|n| n.checked_mul(frames))
        != Some(images)
    {
        return Err(format!(
            "channels×slices×frames = {channels}×{slices}×{frames} differs from images={images}"
        )
        .into());
    }
    let mut contiguous = None;
    let pages: Vec<Option<usize>> = if images == pages.len() as u64 {
        pages.into_iter().map(Some).collect()
    } else {
        match contiguous_planes(
            chain,
            images,
            pages.len() as u64,
            limits,
            &format!("the ImageJ description declares images={images}"),
        )? {
            Some(planes) => {
                contiguous = Some(planes);
                // below max_pages, checked by contiguous_planes
                (0..images as usize).map(Some).collect()
            }
            None => {
                return Err(format!(
                    "images={images} but the file has {} pages of the first page's shape, \
                     and the first page's data is not followed by the other planes \
                     (uncompressed and contiguous, as ImageJ stores files of more than 4 GB)",
                    pages.len()
                )
                .into())
            }
        }
    };
    // ImageJ keeps pixels per `unit` in XResolution and YResolution (its
    // ResolutionUnit says none); `yunit` and `zunit` where they differ
    let unit = value("unit");
    let y_unit = value("yunit").or(unit);
    let mut physical = match unit {
        Some(unit) => resolution_sizes(chain, Some((unit, y_unit.unwrap_or(unit)))),
        None => PhysicalSizes::default(),
    };
    let size = |key: &str, unit: &str| {
        value(key)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|value| PhysicalSize {
                value,
                unit: unit_name(unit),
            })
    };
    physical.z = size("spacing", value("zunit").or(unit).unwrap_or("pixel"));
    physical.t = size("finterval", value("tunit").unwrap_or("second"));
    let number = |key: &str| value(key).and_then(|v| v.parse::<f64>().ok());
    let described_range = number("min").zip(number("max")).map(|(a, b)| [a, b]);
    let acquisition = Acquisition {
        channels: imagej_channels(chain, described_range, channels),
        ..Acquisition::default()
    };
    Ok(Interpretation {
        flavour: Flavour::ImageJ,
        // ImageJ stores channels fastest, then slices, then frames
        axes: vec![('T', frames), ('Z', slices), ('C', channels)],
        pages,
        channel_names: Vec::new(),
        physical,
        acquisition,
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous,
    }
    .squeezed())
}

/// Each channel's display range and colour as ImageJ saved them: `Ranges`
/// (min and max per channel) and `LUTs` (the colour at the top of each
/// lookup table) from its binary metadata, read as tifffile reads them;
/// without `Ranges`, the description's `min` and `max` for a one-channel
/// image. Empty when the file says nothing, or says it inconsistently.
pub(crate) fn imagej_channels(
    chain: &IfdChain,
    described_range: Option<[f64; 2]>,
    channels: u64,
) -> Vec<ChannelAcquisition> {
    let mut ranges: Option<Vec<f64>> = None;
    let mut luts: Vec<[u8; 3]> = Vec::new();
    if let Some((counts, data)) = &chain.imagej_metadata {
        let header_len = counts.first().copied().unwrap_or(0) as usize;
        let header = data.get(..header_len).unwrap_or(&[]);
        let big = match header.get(..4) {
            Some(b"IJIJ") => true,
            Some(b"JIJI") => false,
            _ => return fallback_channels(described_range, channels),
        };
        let u32_at = |b: &[u8]| -> u32 {
            let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
            if big {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        let mut pos = header_len;
        let mut entry = 1usize;
        for pair in header[4..].chunks_exact(8) {
            let mut kind = [pair[0], pair[1], pair[2], pair[3]];
            if !big {
                kind.reverse();
            }
            for _ in 0..u32_at(&pair[4..8]) {
                let Some(len) = counts.get(entry).map(|c| *c as usize) else {
                    return fallback_channels(described_range, channels);
                };
                let Some(bytes) = pos.checked_add(len).and_then(|end| data.get(pos..end)) else {
                    return fallback_channels(described_range, channels);
                };
                match &kind {
                    b"rang" => {
                        ranges = Some(
                            bytes
                                .chunks_exact(8)
                                .map(|b| {
                                    let a: [u8; 8] = b.try_into().unwrap_or([0; 8]);
                                    if chain.big_endian {
                                        f64::from_be_bytes(a)
                                    } else {
                                        f64::from_le_bytes(a)
                                    }
                                })
                                .collect(),
                        )
                    }
                    b"luts" if bytes.len() == 768 => {
                        luts.push([bytes[255], bytes[511], bytes[767]]);
                    }
                    _ => {}
                }
                pos += len;
                entry += 1;
            }
        }
    }
    let n = channels as usize;
    let ranges: Option<Vec<[f64; 2]>> = match ranges {
        Some(r) if r.len() == 2 * n => Some(r.chunks_exact(2).map(|p| [p[0], p[1]]).collect()),
        _ => None,
    };
    if ranges.is_none() && luts.len() != n {
        return fallback_channels(described_range, channels);
    }
    (0..n)
        .map(|i| ChannelAcquisition {
            display_range: ranges.as_ref().map(|r| r[i]).or(if n == 1 {
                described_range
            } else {
                None
            }),
            color: (luts.len() == n).then(|| {
                let [r, g, b] = luts[i];
                format!("#{r:02X}{g:02X}{b:02X}")
            }),
            ..ChannelAcquisition::default()
        })
        .collect()
}

/// A one-channel image's description `min`/`max` as its display range.
pub(crate) fn fallback_channels(
    described_range: Option<[f64; 2]>,
    channels: u64,
) -> Vec<ChannelAcquisition> {
    match (described_range, channels) {
        (Some(range), 1) => vec![ChannelAcquisition {
            display_range: Some(range),
            ..ChannelAcquisition::default()
        }],
        _ => Vec::new(),
    }
}
