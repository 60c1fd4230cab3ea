//! TIFF flavours (OME, ImageJ, ScanImage, tifffile "shaped", plain) and how
//! each places pages on page axes. Tried in that order, like tifffile; bad
//! metadata adds a warning and falls back to the plain interpretation instead
//! of failing the file.

use serde::{Deserialize, Serialize};

use crate::tiff::ifd::IfdChain;

/// Where a file's axis metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// OME-TIFF (OME-XML in the first ImageDescription).
    Ome,
    /// ImageJ hyperstack (`ImageJ=` description).
    ImageJ,
    /// ScanImage BigTIFF.
    ScanImage,
    /// No axis metadata (or tifffile's shaped JSON description).
    Plain,
}

/// A physical size with its unit, such as 0.65 µm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhysicalSize {
    /// The value.
    pub value: f64,
    /// The unit, as the file names it (`µm`, `nm`, `s`, `pixel`, …).
    pub unit: String,
}

/// Physical pixel sizes and the time step, where the file states them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhysicalSizes {
    /// Pixel width.
    pub x: Option<PhysicalSize>,
    /// Pixel height.
    pub y: Option<PhysicalSize>,
    /// Z step.
    pub z: Option<PhysicalSize>,
    /// Time step.
    pub t: Option<PhysicalSize>,
}

/// How a flavour lays pages out: page axes (outermost first; letters from
/// `TZC`, or `I` when unlabelled) and, in C order over those axes, the page
/// (IFD index) holding each position, `None` where the file has none.
#[derive(Debug, Clone)]
pub(crate) struct Interpretation {
    pub flavour: Flavour,
    pub axes: Vec<(char, u64)>,
    pub pages: Vec<Option<usize>>,
    pub channel_names: Vec<String>,
    pub physical: PhysicalSizes,
    pub warnings: Vec<String>,
}

impl Interpretation {
    /// Drops size-1 axes, which carry no information.
    pub fn squeezed(mut self) -> Self {
        self.axes.retain(|(_, n)| *n != 1);
        self
    }
}

/// The series of the file: the first flavour that recognises it.
pub(crate) fn interpret(chain: &IfdChain, header: &[u8]) -> Interpretation {
    let mut warnings = Vec::new();
    let desc = chain.description.as_deref().unwrap_or("");
    if desc.contains("<OME") {
        match ome(chain, desc) {
            Ok(i) => return i,
            Err(e) => warnings.push(format!("OME-XML metadata ignored: {e}")),
        }
    }
    if desc.starts_with("ImageJ=") {
        match imagej(chain, desc) {
            Ok(i) => return i,
            Err(e) => warnings.push(format!("ImageJ metadata ignored: {e}")),
        }
    }
    if chain.bigtiff {
        if let Some(text) = scanimage_header(header) {
            match scanimage(chain, &text) {
                Ok(i) => return i,
                Err(e) => warnings.push(format!("ScanImage metadata ignored: {e}")),
            }
        }
    }
    let mut plain = plain(chain, desc, &mut warnings);
    plain.warnings = warnings;
    plain
}

fn first_kind_pages(chain: &IfdChain) -> Vec<usize> {
    let Some(Ok(first)) = chain.pages.first() else {
        return vec![0];
    };
    chain
        .pages
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Ok(p) if !p.reduced && p.same_kind(first) => Some(i),
            _ => None,
        })
        .collect()
}

fn plain(chain: &IfdChain, desc: &str, warnings: &mut Vec<String>) -> Interpretation {
    let pages = first_kind_pages(chain);
    let mut axes = vec![('I', pages.len() as u64)];
    // tifffile writes {"shape": [...]} (optionally with "axes") for plain stacks
    if desc.trim_start().starts_with('{') {
        if let Some(shaped) = shaped_axes(chain, desc, pages.len() as u64) {
            axes = shaped;
        } else {
            warnings.push("shaped description does not match the pages; using page order".into());
        }
    }
    Interpretation {
        flavour: Flavour::Plain,
        axes,
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical: resolution_sizes(chain, None),
        warnings: Vec::new(),
    }
    .squeezed()
}

/// Page axes from tifffile's `{"shape": [..], "axes": ".."}` description.
fn shaped_axes(chain: &IfdChain, desc: &str, n_pages: u64) -> Option<Vec<(char, u64)>> {
    let first = chain.pages.first()?.as_ref().ok()?;
    let json_shape = desc.split("\"shape\":").nth(1)?;
    let inner = json_shape.split('[').nth(1)?.split(']').next()?;
    let mut dims: Vec<u64> = inner
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let axes_letters: Option<Vec<char>> = desc
        .split("\"axes\":")
        .nth(1)
        .and_then(|s| s.split('"').nth(1))
        .map(|s| s.chars().collect());
    let spp = u64::from(first.samples);
    let mut letters = axes_letters.unwrap_or_else(|| vec!['Q'; dims.len()]);
    if letters.len() != dims.len() {
        return None;
    }
    if spp > 1 {
        if !first.planar_separate && dims.last() == Some(&spp) {
            dims.pop();
            letters.pop();
        } else if first.planar_separate && dims.len() >= 3 && dims[dims.len() - 3] == spp {
            let i = dims.len() - 3;
            dims.remove(i);
            letters.remove(i);
        } else {
            return None;
        }
    }
    if dims.len() < 2
        || dims[dims.len() - 2] != u64::from(first.height)
        || dims[dims.len() - 1] != u64::from(first.width)
    {
        return None;
    }
    dims.truncate(dims.len() - 2);
    letters.truncate(letters.len() - 2);
    if dims.iter().product::<u64>() != n_pages {
        return None;
    }
    Some(
        letters
            .into_iter()
            .map(|l| if "TZC".contains(l) { l } else { 'I' })
            .zip(dims)
            .collect(),
    )
}

fn resolution_sizes(chain: &IfdChain, unit_override: Option<&str>) -> PhysicalSizes {
    let mut sizes = PhysicalSizes::default();
    if let Some((xr, yr, unit)) = chain.resolution {
        let unit = match (unit_override, unit) {
            (Some(u), _) => u.to_string(),
            (None, 2) => "inch".into(),
            (None, 3) => "cm".into(),
            _ => return sizes,
        };
        if xr > 0.0 && yr > 0.0 && xr.is_finite() && yr.is_finite() {
            sizes.x = Some(PhysicalSize {
                value: 1.0 / xr,
                unit: unit.clone(),
            });
            sizes.y = Some(PhysicalSize {
                value: 1.0 / yr,
                unit,
            });
        }
    }
    sizes
}

fn ome(chain: &IfdChain, xml: &str) -> Result<Interpretation, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("invalid XML: {e}"))?;
    let image = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Image")
        .ok_or("no Image element")?;
    let pixels = image
        .children()
        .find(|n| n.tag_name().name() == "Pixels")
        .ok_or("no Pixels element")?;
    let size = |name: &str| -> Result<u64, String> {
        pixels
            .attribute(name)
            .unwrap_or("1")
            .parse::<u64>()
            .map_err(|_| format!("{name} is not a number"))
    };
    let (sx, sy, sz, sc, st) = (
        size("SizeX")?,
        size("SizeY")?,
        size("SizeZ")?,
        size("SizeC")?,
        size("SizeT")?,
    );
    let first = chain
        .pages
        .first()
        .and_then(|p| p.as_ref().ok())
        .ok_or("the first page cannot be read")?;
    if sx != u64::from(first.width) || sy != u64::from(first.height) {
        return Err(format!(
            "SizeX×SizeY {sx}×{sy} differs from the first page's {}×{}",
            first.width, first.height
        ));
    }
    let spp = u64::from(first.samples);
    if sc % spp != 0 {
        return Err(format!(
            "SizeC {sc} is not a multiple of {spp} samples per pixel"
        ));
    }
    let order = pixels.attribute("DimensionOrder").unwrap_or("XYZCT");
    if order.len() != 5 || !order.starts_with("XY") {
        return Err(format!("unknown DimensionOrder {order:?}"));
    }
    // page axes outermost first: the reverse of DimensionOrder without XY
    let axes: Vec<(char, u64)> = order[2..]
        .chars()
        .rev()
        .map(|a| {
            let n = match a {
                'Z' => sz,
                'C' => sc / spp,
                _ => st,
            };
            (a, n)
        })
        .collect();
    let n_planes: u64 = axes.iter().map(|(_, n)| n).product();
    if n_planes > chain.pages.len() as u64 * 4 + 1024 && n_planes > 1 << 24 {
        return Err(format!("{n_planes} planes declared"));
    }
    let n_pages = chain.pages.len();
    let mut pages: Vec<Option<usize>> = vec![None; n_planes as usize];
    let mut warnings = Vec::new();
    let tiffdata: Vec<_> = pixels
        .children()
        .filter(|n| n.tag_name().name() == "TiffData")
        .collect();
    if tiffdata.is_empty() {
        for (k, p) in pages.iter_mut().enumerate() {
            *p = (k < n_pages).then_some(k);
        }
    }
    for td in &tiffdata {
        if let Some(uuid) = td.children().find(|n| n.tag_name().name() == "UUID") {
            if let Some(name) = uuid.attribute("FileName") {
                let own = doc.root_element().attribute("UUID");
                if uuid.text().map(str::trim) != own {
                    return Err(format!(
                        "planes are stored in another file ({name}); multi-file OME-TIFF \
                         datasets are not supported"
                    ));
                }
            }
        }
        let attr = |name: &str| td.attribute(name).and_then(|v| v.parse::<u64>().ok());
        let ifd = attr("IFD").unwrap_or(0);
        let count = attr("PlaneCount")
            .or(attr("NumPlanes"))
            .unwrap_or(if td.attribute("IFD").is_some() { 1 } else { 0 });
        // index of the first plane in C order over the page axes
        let mut start = 0u64;
        for (a, n) in &axes {
            let first = attr(&format!("First{a}")).unwrap_or(0);
            if first >= *n {
                warnings.push(format!("TiffData First{a}={first} is outside the image"));
            }
            start = start * n + first.min(n.saturating_sub(1));
        }
        let count = if count == 0 {
            n_planes.saturating_sub(start)
        } else {
            count
        };
        for k in 0..count {
            let plane = start + k;
            if plane >= n_planes {
                break;
            }
            let page = ifd + k;
            if page < n_pages as u64 {
                pages[plane as usize] = Some(page as usize);
            } else {
                warnings.push(format!(
                    "OME TiffData refers to IFD {page} but the file has {n_pages}; that \
                     plane is left as zeros"
                ));
            }
        }
    }
    let missing = pages.iter().filter(|p| p.is_none()).count();
    if missing > 0 && warnings.is_empty() {
        warnings.push(format!(
            "{missing} plane(s) have no TIFF page and are left as zeros"
        ));
    }
    let channel_names = pixels
        .children()
        .filter(|n| n.tag_name().name() == "Channel")
        .map(|c| c.attribute("Name").unwrap_or("").to_string())
        .collect();
    let unit_of = |attr: &str, default: &str| {
        pixels
            .attribute(format!("{attr}Unit").as_str())
            .unwrap_or(default)
            .to_string()
    };
    let physical_of = |attr: &str, default_unit: &str| {
        pixels
            .attribute(attr)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|value| PhysicalSize {
                value,
                unit: unit_of(attr, default_unit),
            })
    };
    Ok(Interpretation {
        flavour: Flavour::Ome,
        axes,
        pages,
        channel_names,
        physical: PhysicalSizes {
            x: physical_of("PhysicalSizeX", "µm"),
            y: physical_of("PhysicalSizeY", "µm"),
            z: physical_of("PhysicalSizeZ", "µm"),
            t: physical_of("TimeIncrement", "s"),
        },
        warnings,
    }
    .squeezed())
}

fn imagej(chain: &IfdChain, desc: &str) -> Result<Interpretation, String> {
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
    if channels * slices * frames != images {
        return Err(format!(
            "channels×slices×frames = {channels}×{slices}×{frames} differs from images={images}"
        ));
    }
    if images != pages.len() as u64 {
        return Err(format!(
            "images={images} but the file has {} pages of the first page's shape \
             (ImageJ files of more than 4 GB store pages contiguously, which is not supported)",
            pages.len()
        ));
    }
    let unit = value("unit").map(|u| match u {
        "micron" | "um" | "\\u00B5m" => "µm".to_string(),
        other => other.to_string(),
    });
    let mut physical = resolution_sizes(chain, Some(unit.as_deref().unwrap_or("pixel")));
    if chain.resolution.is_none() || unit.is_none() {
        physical.x = None;
        physical.y = None;
    }
    physical.z = value("spacing")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|value| PhysicalSize {
            value,
            unit: unit.clone().unwrap_or_else(|| "pixel".into()),
        });
    physical.t = value("finterval")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|value| PhysicalSize {
            value,
            unit: "s".into(),
        });
    Ok(Interpretation {
        flavour: Flavour::ImageJ,
        // ImageJ stores channels fastest, then slices, then frames
        axes: vec![('T', frames), ('Z', slices), ('C', channels)],
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical,
        warnings: Vec::new(),
    }
    .squeezed())
}

/// The non-varying frame data of a ScanImage BigTIFF (v3/v4), stored right
/// after the 16-byte header.
fn scanimage_header(header: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(header.get(i..i + 4)?.try_into().ok()?))
    };
    if header.get(0..2)? != b"II" || word(16)? != 0x0703_0301 || !(3..=4).contains(&word(20)?) {
        return None;
    }
    let size = word(24)? as usize;
    let text = header.get(32..32 + size)?;
    Some(String::from_utf8_lossy(text).into_owned())
}

fn scanimage(chain: &IfdChain, text: &str) -> Result<Interpretation, String> {
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
            if n % channels != 0 {
                return Err("unable to determine framesPerSlice".into());
            }
            n / channels
        }
    };
    let slices = (n / (frames * channels)).max(1);
    if slices * frames * channels != n {
        return Err(format!(
            "{n} pages do not split into {slices} slices × {frames} frames × {channels} channels"
        ));
    }
    Ok(Interpretation {
        flavour: Flavour::ScanImage,
        axes: vec![('Z', slices), ('T', frames), ('C', channels)],
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical: PhysicalSizes::default(),
        warnings: Vec::new(),
    }
    .squeezed())
}
