//! OME-TIFF: the OME-XML in the first ImageDescription places every
//! plane (TiffData), names channels and gives physical sizes, acquisition
//! details and the catalogue notes (Description, tag and map annotations).

use super::*;

/// Deepest element nesting accepted in OME-XML. roxmltree parses nested
/// elements recursively, so a few thousand levels overflow a thread's stack;
/// real OME-XML nests fewer than ten.
pub const MAX_XML_DEPTH: usize = 256;

/// Most attributes accepted on one OME-XML element: roxmltree checks each
/// new attribute against the element's earlier ones, which is quadratic.
/// Real OME elements have a few dozen at most.
pub const MAX_XML_ATTRIBUTES: usize = 256;

/// Most XML nodes (elements and text) accepted in OME-XML: a few per plane
/// for a file at the default page limit, while bounding the parsed tree's
/// memory to a few hundred megabytes.
pub const MAX_XML_NODES: u32 = 1 << 22;

/// The pages of an OME-TIFF of one image whose planes are all in this
/// file: SizeZ × SizeT × SizeC / samples per pixel.
pub(crate) fn declared_pages(chain: &IfdChain, xml: &str) -> Option<u64> {
    check_xml_structure(xml).ok()?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).ok()?;
    let mut images = doc.descendants().filter(|n| n.tag_name().name() == "Image");
    let image = images.next()?;
    if images.next().is_some() {
        return None;
    }
    let pixels = image.children().find(|n| n.tag_name().name() == "Pixels")?;
    if pixels
        .descendants()
        .any(|n| n.tag_name().name() == "UUID" && n.attribute("FileName").is_some())
    {
        return None;
    }
    let size = |name: &str| {
        pixels
            .attribute(name)
            .unwrap_or("1")
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
    };
    let samples = u64::from(chain.pages.first()?.as_ref().ok()?.samples);
    let channels = size("SizeC")?;
    if channels % samples != 0 {
        return None;
    }
    size("SizeZ")?
        .checked_mul(size("SizeT")?)?
        .checked_mul(channels / samples)
}

pub(crate) fn interpret(chain: &IfdChain, xml: &str) -> Result<Interpretation, Rejection> {
    let doc = parse(xml)?;
    let image = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Image")
        .ok_or("no Image element")?;
    of_image(chain, &doc, image, false)
}

/// The OME-XML `xml` parsed, within the limits on its structure.
pub(crate) fn parse(xml: &str) -> Result<roxmltree::Document<'_>, Rejection> {
    check_xml_structure(xml).map_err(Rejection::Refused)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    };
    roxmltree::Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => Rejection::Refused(TiffError::Unsupported(format!(
            "the OME-XML has more than {MAX_XML_NODES} XML nodes, the most pentascope reads"
        ))),
        e => Rejection::Ignored(format!("invalid XML: {e}")),
    })
}

/// The first image's name and pyramid levels (its pages' SubIFDs, see
/// [`subifd_levels`]), then the document's further `Image`s as series of
/// their own, as tifffile lists them: each with its own levels, pages
/// (TiffData), sizes and channels; those without TiffData (no pages, which
/// tifffile skips) or whose metadata cannot be used are left out with a
/// warning. A document of more than [`Limits::max_series`] images is
/// refused before any is read, and so are images that together declare
/// far more planes than the file has pages.
pub(crate) fn file_series(
    chain: &IfdChain,
    xml: &str,
    first: &Interpretation,
    limits: &Limits,
) -> Result<FileSeries, TiffError> {
    // most files hold one image and no pyramid: their XML, possibly large,
    // is not parsed a second time
    let pyramidal = chain.subifds.iter().any(|listed| !listed.is_empty());
    if image_tags(xml) < 2 && !pyramidal {
        return Ok(FileSeries::default());
    }
    let doc = match parse(xml) {
        Ok(doc) => doc,
        Err(Rejection::Refused(e)) => return Err(e),
        Err(Rejection::Ignored(_)) => return Ok(FileSeries::default()),
    };
    let images: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "Image")
        .collect();
    check_series_count(images.len() as u64, limits)?;
    // a series with a pyramid and no name is tifffile's `Baseline`
    let name = |image: &roxmltree::Node, pages: &[Option<usize>]| match image
        .attribute("Name")
        .unwrap_or("")
    {
        "" if has_subifds(chain, pages) => "Baseline".to_string(),
        name => name.to_string(),
    };
    let mut found = FileSeries {
        name: images
            .first()
            .map(|image| name(image, &first.pages))
            .unwrap_or_default(),
        levels: subifd_levels(chain, &first.pages),
        ..FileSeries::default()
    };
    let n_pages = chain.pages.len() as u64;
    let most_planes = n_pages.saturating_mul(2) + MIN_MISSING_PLANES;
    let mut planes = 0u64;
    for (index, image) in images.iter().enumerate().skip(1) {
        let interpretation = match of_image(chain, &doc, *image, true) {
            Ok(i) => i,
            Err(Rejection::Refused(e)) => return Err(e),
            Err(Rejection::Ignored(why)) => {
                found.warnings.push(format!(
                    "OME Image {index} ({}) left out: {why}",
                    name(image, &[])
                ));
                continue;
            }
        };
        planes += interpretation.pages.len() as u64;
        if planes > most_planes {
            return Err(TiffError::Format(format!(
                "the OME-XML's images declare more than {most_planes} planes together, \
                 more than twice the file's {n_pages} pages"
            )));
        }
        found.further.push(FurtherSeries {
            name: name(image, &interpretation.pages),
            kind: SeriesKind::Image,
            levels: subifd_levels(chain, &interpretation.pages),
            interpretation,
        });
    }
    Ok(found)
}

/// How many start tags named `Image` (with any namespace prefix) `xml`
/// has, counted without parsing it: at least as many as its `Image`
/// elements.
fn image_tags(xml: &str) -> usize {
    xml.split('<')
        .skip(1)
        .filter(|tag| {
            let name = tag
                .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next();
            name.is_some_and(|n| n == "Image" || n.ends_with(":Image"))
        })
        .count()
}

/// How OME `image` places its planes on the file's pages; `further` for
/// an image after the first, whose first TiffData names its first page
/// (the first image's is the file's first page).
fn of_image(
    chain: &IfdChain,
    doc: &roxmltree::Document,
    image: roxmltree::Node,
    further: bool,
) -> Result<Interpretation, Rejection> {
    let pixels = image
        .children()
        .find(|n| n.tag_name().name() == "Pixels")
        .ok_or("no Pixels element")?;
    let size = |name: &str| -> Result<u64, String> {
        match pixels.attribute(name).unwrap_or("1").parse::<u64>() {
            Ok(0) => Err(format!("{name} is 0")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{name} is not a number")),
        }
    };
    let (sx, sy, sz, sc, st) = (
        size("SizeX")?,
        size("SizeY")?,
        size("SizeZ")?,
        size("SizeC")?,
        size("SizeT")?,
    );
    let first_tiffdata = pixels
        .children()
        .find(|n| n.tag_name().name() == "TiffData");
    if further && first_tiffdata.is_none() {
        return Err("it has no TiffData (no pages)".into());
    }
    let key = first_tiffdata
        .filter(|_| further)
        .and_then(|td| td.attribute("IFD"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let first = chain
        .pages
        .get(key)
        .and_then(|p| p.as_ref().ok())
        .ok_or("the first page cannot be read")?;
    if sx != u64::from(first.width) || sy != u64::from(first.height) {
        return Err(format!(
            "SizeX×SizeY {sx}×{sy} differs from the first page's {}×{}",
            first.width, first.height
        )
        .into());
    }
    let spp = u64::from(first.samples);
    if sc % spp != 0 {
        return Err(format!("SizeC {sc} is not a multiple of {spp} samples per pixel").into());
    }
    let order = pixels.attribute("DimensionOrder").unwrap_or("XYZCT");
    if order.len() != 5 || !order.starts_with("XY") {
        return Err(format!("unknown DimensionOrder {order:?}").into());
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
    let n_pages = chain.pages.len() as u64;
    let n_planes = check_declared_planes(&axes, n_pages).map_err(Rejection::Refused)?;
    let mut pages: Vec<Option<usize>> = vec![None; n_planes as usize];
    let mut warnings = Vec::new();
    let tiffdata: Vec<_> = pixels
        .children()
        .filter(|n| n.tag_name().name() == "TiffData")
        .collect();
    if tiffdata.is_empty() {
        for (k, p) in pages.iter_mut().enumerate() {
            *p = (k < chain.pages.len()).then_some(k);
        }
    }
    // planes mapped by all TiffData together; bounded so that many elements
    // each mapping every plane cannot cost elements × planes
    let mut mapped = 0u64;
    let own_pages = chain
        .ome_files
        .as_ref()
        .map_or(0..chain.pages.len(), |s| s.own.clone());
    for td in &tiffdata {
        // the pages of the file the TiffData names: this file's, or those
        // of another file of its set (read beside it, see `omeset`)
        let (file_pages, named_by_uuid) = match td
            .children()
            .find(|n| n.tag_name().name() == "UUID")
            .and_then(|uuid| {
                Some((
                    uuid.text().unwrap_or("").trim(),
                    uuid.attribute("FileName")?,
                ))
            }) {
            None => (own_pages.clone(), false),
            Some((uuid, name)) => match chain.ome_files.as_ref().and_then(|s| s.pages_of(uuid)) {
                Some(pages) => (pages, true),
                None if Some(uuid) == doc.root_element().attribute("UUID") => {
                    (own_pages.clone(), false)
                }
                None => {
                    return Err(format!(
                        "planes are stored in another file ({name}), which was not read \
                         with this one"
                    )
                    .into())
                }
            },
        };
        let attr = |name: &str| td.attribute(name).and_then(|v| v.parse::<u64>().ok());
        let first_ifd = attr("IFD").unwrap_or(0);
        let count = attr("PlaneCount")
            .or(attr("NumPlanes"))
            .unwrap_or(if td.attribute("IFD").is_some() { 1 } else { 0 });
        // index of the first plane in C order over the page axes; below
        // n_planes, as each coordinate is clamped below its axis size
        let mut start = 0u64;
        for (a, n) in &axes {
            let first = attr(&format!("First{a}")).unwrap_or(0);
            if first >= *n {
                warnings.push(format!("TiffData First{a}={first} is outside the image"));
            }
            start = start * n + first.min(n - 1);
        }
        let left = n_planes - start;
        let count = match count {
            // the named file's pages from the first named on, as tifffile
            // reads them
            0 if named_by_uuid => (file_pages.len() as u64)
                .saturating_sub(first_ifd)
                .min(left),
            0 => left,
            count => count.min(left),
        };
        mapped += count;
        if mapped > n_planes.saturating_mul(2) {
            return Err(format!(
                "TiffData elements map more than twice the {n_planes} planes the image has"
            )
            .into());
        }
        let file_len = file_pages.len() as u64;
        for k in 0..count {
            match first_ifd.checked_add(k).filter(|page| *page < file_len) {
                Some(page) => pages[(start + k) as usize] = Some(file_pages.start + page as usize),
                None => {
                    warnings.push(format!(
                        "OME TiffData refers to IFD {} but the file has {file_len}; \
                         {} plane(s) from there on are left as zeros",
                        first_ifd.saturating_add(k),
                        count - k
                    ));
                    break;
                }
            }
        }
    }
    let missing = pages.iter().filter(|p| p.is_none()).count() as u64;
    if missing > allowed_missing_planes(n_planes) {
        return Err(Rejection::Refused(too_many_missing_planes(
            n_planes,
            n_planes - missing,
        )));
    }
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
        unit_name(
            pixels
                .attribute(format!("{attr}Unit").as_str())
                .unwrap_or(default),
        )
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
        acquisition: acquisition(doc, image, pixels),
        notes: notes(doc, image),
        original: None,
        warnings,
        contiguous: None,
    }
    .squeezed())
}

/// The description of OME `image` and the tag and map annotations it
/// refers to (`AnnotationRef`) in the document's `StructuredAnnotations`.
pub(crate) fn notes(doc: &roxmltree::Document, image: roxmltree::Node) -> FileNotes {
    let ome_ns = image.tag_name().namespace();
    let is = |n: &roxmltree::Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == ome_ns
    };
    let description = image
        .children()
        .find(|n| is(n, "Description"))
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from);
    let refs: std::collections::HashSet<&str> = image
        .children()
        .filter(|n| is(n, "AnnotationRef"))
        .filter_map(|n| n.attribute("ID"))
        .collect();
    let mut notes = FileNotes {
        description,
        ..FileNotes::default()
    };
    let annotations = doc
        .root_element()
        .children()
        .filter(|n| is(n, "StructuredAnnotations"))
        .flat_map(|n| n.children())
        .filter(|n| n.attribute("ID").is_some_and(|id| refs.contains(id)));
    for annotation in annotations {
        let value = annotation.children().find(|n| is(n, "Value"));
        if is(&annotation, "TagAnnotation") {
            if let Some(tag) = value.and_then(|v| v.text()).filter(|t| !t.is_empty()) {
                notes.tags.push(tag.to_string());
            }
        } else if is(&annotation, "MapAnnotation") {
            for m in value
                .into_iter()
                .flat_map(|v| v.children())
                .filter(|n| is(n, "M"))
            {
                if let Some(key) = m.attribute("K") {
                    notes
                        .annotations
                        .push((key.to_string(), m.text().unwrap_or("").to_string()));
                }
            }
        }
    }
    notes
}

/// The acquisition details of OME `image`: its date, the objective its
/// `ObjectiveSettings` name (in the instrument it refers to), and each
/// channel's wavelengths, fluorophore and colour. Only elements in the OME
/// namespace count: vendors' own metadata (kept in annotations) may repeat
/// the same names.
pub(crate) fn acquisition(
    doc: &roxmltree::Document,
    image: roxmltree::Node,
    pixels: roxmltree::Node,
) -> Acquisition {
    let ome_ns = image.tag_name().namespace();
    let is = |n: &roxmltree::Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == ome_ns
    };
    let text = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let number = |s: Option<&str>| {
        s.and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let date = image
        .children()
        .find(|n| is(n, "AcquisitionDate"))
        .and_then(|n| text(n.text()));
    let objective = image
        .children()
        .find(|n| is(n, "ObjectiveSettings"))
        .and_then(|settings| settings.attribute("ID"))
        .and_then(|id| {
            let instrument = image
                .children()
                .find(|n| is(n, "InstrumentRef"))
                .and_then(|r| r.attribute("ID"));
            doc.root_element()
                .children()
                .filter(|n| is(n, "Instrument"))
                .filter(|n| instrument.is_none() || n.attribute("ID") == instrument)
                .flat_map(|n| n.children())
                .find(|n| is(n, "Objective") && n.attribute("ID") == Some(id))
        })
        .map(|o| Objective {
            model: text(o.attribute("Model")),
            manufacturer: text(o.attribute("Manufacturer")),
            nominal_magnification: number(o.attribute("NominalMagnification")),
            lens_na: number(o.attribute("LensNA")),
            immersion: text(o.attribute("Immersion")),
        });
    let wavelength = |c: &roxmltree::Node, attr: &str| {
        number(c.attribute(attr)).map(|value| PhysicalSize {
            value,
            unit: unit_name(c.attribute(format!("{attr}Unit").as_str()).unwrap_or("nm")),
        })
    };
    let channels = pixels
        .children()
        .filter(|n| is(n, "Channel"))
        .map(|c| ChannelAcquisition {
            excitation_wavelength: wavelength(&c, "ExcitationWavelength"),
            emission_wavelength: wavelength(&c, "EmissionWavelength"),
            fluor: text(c.attribute("Fluor")),
            // OME writes RGBA as one signed 32-bit integer
            color: c
                .attribute("Color")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(v))
                .map(|v| format!("#{:06X}", (v as u32) >> 8)),
            illumination: text(c.attribute("IlluminationType")),
            display_range: None,
        })
        .collect::<Vec<_>>();
    let described = channels.iter().any(|c| *c != ChannelAcquisition::default());
    Acquisition {
        date,
        objective,
        channels: if described { channels } else { Vec::new() },
    }
}

/// The number of planes the OME page axes declare, refused before anything
/// of that size is allocated when it overflows or when the file's pages
/// could not hold nearly all of them (each page holds at most one plane).
pub(crate) fn check_declared_planes(axes: &[(char, u64)], n_pages: u64) -> Result<u64, TiffError> {
    let sizes = || {
        axes.iter()
            .map(|(a, n)| format!("Size{a}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let planes = axes
        .iter()
        .try_fold(1u64, |acc, (_, n)| acc.checked_mul(*n))
        .ok_or_else(|| {
            TiffError::Format(format!(
                "the OME-XML declares more than 2^64 planes ({})",
                sizes()
            ))
        })?;
    if planes.saturating_sub(n_pages) > allowed_missing_planes(planes) {
        return Err(too_many_missing_planes(planes, n_pages));
    }
    Ok(planes)
}

/// Refuses XML that would exhaust roxmltree before it is parsed: elements
/// nested deeper than [`MAX_XML_DEPTH`] (its parser recurses per level) or
/// carrying more than [`MAX_XML_ATTRIBUTES`] attributes. Tags are counted
/// as roxmltree reads them: comments, CDATA sections and processing
/// instructions are skipped and quoted attribute values may hold `>`; where
/// this scan and roxmltree could disagree, roxmltree rejects the text first.
pub(crate) fn check_xml_structure(xml: &str) -> Result<(), TiffError> {
    let b = xml.as_bytes();
    let skip_past = |from: usize, end: &[u8]| {
        b[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(b.len(), |p| from + p + end.len())
    };
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(p) = b[i..].iter().position(|&c| c == b'<') {
        let at = i + p;
        let rest = &b[at..];
        i = if rest.starts_with(b"<!--") {
            skip_past(at + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_past(at + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_past(at + 2, b"?>")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            at + 2
        } else if rest.starts_with(b"<!") {
            // a DOCTYPE, which roxmltree refuses
            at + 2
        } else {
            let mut quote = None;
            let mut attributes = 0usize;
            let mut end = None;
            for (j, &c) in rest.iter().enumerate().skip(1) {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, b'"' | b'\'') => quote = Some(c),
                    (None, b'=') => attributes += 1,
                    (None, b'>') => {
                        end = Some(j);
                        break;
                    }
                    (None, _) => {}
                }
            }
            if attributes > MAX_XML_ATTRIBUTES {
                return Err(TiffError::Unsupported(format!(
                    "an OME-XML element has {attributes} attributes; at most \
                     {MAX_XML_ATTRIBUTES} are read"
                )));
            }
            let Some(end) = end else { break };
            if rest[end - 1] != b'/' {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(TiffError::Unsupported(format!(
                        "the OME-XML nests elements more than {MAX_XML_DEPTH} levels deep, \
                         the most pentascope reads"
                    )));
                }
            }
            at + end + 1
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(xml: &str) -> bool {
        check_xml_structure(xml).is_ok()
    }

    #[test]
    fn image_tags_count_every_image_start_tag() {
        assert_eq!(image_tags("<OME><Image ID='a'/><Pixels/></OME>"), 1);
        assert_eq!(
            image_tags(
                "<ome:OME><ome:Image ID='a'></ome:Image><Image>x</Image><ImageRef/></ome:OME>"
            ),
            2
        );
        assert_eq!(image_tags("<OME/>"), 0);
    }

    #[test]
    fn xml_depth_counts_open_elements_only() {
        let deep = |n: usize| "<a>".repeat(n) + &"</a>".repeat(n);
        assert!(depth_ok(&deep(MAX_XML_DEPTH)));
        assert!(!depth_ok(&deep(MAX_XML_DEPTH + 1)));
        // siblings, empty elements, comments, CDATA and quoted `>` add no depth
        assert!(depth_ok(&"<a></a><b/>".repeat(10 * MAX_XML_DEPTH)));
        let hidden = format!(
            "<r><!--{0}--><![CDATA[{0}]]><?pi {0}?><e v='>'/><e v=\"/>\">x</e></r>",
            "<a>".repeat(2 * MAX_XML_DEPTH)
        );
        assert!(depth_ok(&hidden));
        // an attribute value cannot close a tag early and hide nesting
        let quoted = "<a x='>'>".repeat(MAX_XML_DEPTH + 1);
        assert!(!depth_ok(&quoted));
    }
}
