//! Colour rendering of several channels into one picture, as OMERO's
//! rendering settings describe it: which channels are active, each one's
//! window and colour ([`parse_channels`]), an optional projection over Z
//! ([`Projection`]), and resampling of a region to the output size
//! ([`Resample`]), accumulated band by band ([`Compositor`]) so that a
//! large plane is never held whole.
//!
//! The composite, exactly: per active channel `v = clamp((x - start) /
//! (end - start), 0, 1)`, then `rgb = clamp(Σ v · colour / 255, 0, 1)` per
//! pixel; greyscale mode shows the first active channel's `v`. The result
//! is resampled with a box filter (Pillow's `BOX`: each output pixel is the
//! mean of the input pixels whose centres fall in its footprint, which for
//! a factor of 2^k is the mean of 2^k × 2^k blocks, a pyramid level), then
//! rounded to 8 bits.

use crate::error::CoreError;

/// One channel of a rendering request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelSpec {
    /// 0-based channel index.
    pub channel: usize,
    /// Whether it contributes to the picture.
    pub active: bool,
    /// `start:end`, if given.
    pub window: Option<(f64, f64)>,
    /// `$RRGGBB`, if given.
    pub color: Option<[u8; 3]>,
}

/// Parses OMERO's channel list `1|100:5000$FF0000,2|0:4095$00FF00,-3`:
/// 1-based channels, an optional `|start:end` window, an optional
/// `$RRGGBB` colour, and a leading `-` for an inactive channel. Errors name
/// the offending token.
pub fn parse_channels(spec: &str, channels: usize) -> Result<Vec<ChannelSpec>, CoreError> {
    let bad = |token: &str, why: String| {
        CoreError::InvalidRequest(format!(
            "c: cannot read {token:?}: {why}; write channels as 1|100:5000$FF0000,2,-3 \
             (1-based channel, optional |start:end window, optional $RRGGBB colour, - for \
             inactive)"
        ))
    };
    let mut out: Vec<ChannelSpec> = Vec::new();
    for token in spec.split(',') {
        let token = token.trim();
        if token.is_empty() {
            return Err(bad(token, "an empty entry".into()));
        }
        let (active, rest) = match token.strip_prefix('-') {
            Some(rest) => (false, rest),
            None => (true, token),
        };
        let (head, color) = match rest.split_once('$') {
            Some((head, hex)) => (head, Some(parse_color(hex).map_err(|e| bad(token, e))?)),
            None => (rest, None),
        };
        let (index, window) = match head.split_once('|') {
            Some((index, window)) => {
                let (start, end) = window
                    .split_once(':')
                    .ok_or_else(|| bad(token, "a window is start:end".into()))?;
                let number = |s: &str| {
                    s.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| bad(token, format!("{s:?} is not a finite number")))
                };
                let (start, end) = (number(start)?, number(end)?);
                if start >= end {
                    return Err(bad(
                        token,
                        format!("the window start {start} is not below its end {end}"),
                    ));
                }
                (index, Some((start, end)))
            }
            None => (head, None),
        };
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| bad(token, format!("{index:?} is not a channel number")))?;
        if !(1..=channels).contains(&index) {
            return Err(bad(
                token,
                format!("channels are numbered 1 to {channels} (1-based)"),
            ));
        }
        if out.iter().any(|c| c.channel == index - 1) {
            return Err(bad(token, format!("channel {index} is named twice")));
        }
        out.push(ChannelSpec {
            channel: index - 1,
            active,
            window,
            color,
        });
    }
    Ok(out)
}

/// `RRGGBB` (hexadecimal) as bytes.
pub fn parse_color(hex: &str) -> Result<[u8; 3], String> {
    let hex = hex.trim().trim_start_matches('#');
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("colour {hex:?} is not RRGGBB"));
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

/// `#RRGGBB`.
pub fn color_hex(color: [u8; 3]) -> String {
    format!("#{:02X}{:02X}{:02X}", color[0], color[1], color[2])
}

/// Default colours for `channels` channels without colours of their own:
/// grey for one, green and magenta for two, then red, green, blue, cyan,
/// magenta, yellow, grey, repeated.
pub fn default_colors(channels: usize) -> Vec<[u8; 3]> {
    const PALETTE: [[u8; 3]; 7] = [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [0, 255, 255],
        [255, 0, 255],
        [255, 255, 0],
        [255, 255, 255],
    ];
    match channels {
        1 => vec![[255, 255, 255]],
        2 => vec![[0, 255, 0], [255, 0, 255]],
        n => (0..n).map(|i| PALETTE[i % PALETTE.len()]).collect(),
    }
}

/// A projection over Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Largest value.
    Max,
    /// Mean value.
    Mean,
    /// Sum of values.
    Sum,
}

impl Projection {
    /// `intmax`, `intmean` or `intsum`.
    pub fn parse(name: &str) -> Option<Projection> {
        match name {
            "intmax" => Some(Projection::Max),
            "intmean" => Some(Projection::Mean),
            "intsum" => Some(Projection::Sum),
            _ => None,
        }
    }

    /// Whether the projection of samples is itself a sample of their type
    /// (the maximum), so that planes fold without conversion; the mean and
    /// the sum fold in `f64`.
    pub fn keeps_type(self) -> bool {
        self == Projection::Max
    }

    /// Folds plane `values` into `acc` by maximum. NaN propagates, as
    /// NumPy's max does; converting afterwards gives what converting first
    /// would, as every sample type's conversion to `f64` keeps order.
    pub fn fold_max<T: crate::Sample>(acc: &mut [T], values: &[T]) {
        for (a, &v) in acc.iter_mut().zip(values) {
            // a select, not a conditional store, so that the loop vectorises
            let nan = v.partial_cmp(&v).is_none();
            *a = if nan || v > *a { v } else { *a };
        }
    }

    /// Folds plane `values` into the sum `acc` (the first plane
    /// initialises it), converting each sample as it goes.
    pub fn fold_sum<T: crate::Sample>(acc: &mut [f64], values: &[T], first: bool) {
        if first {
            for (a, v) in acc.iter_mut().zip(values) {
                *a = v.to_f64();
            }
        } else {
            for (a, v) in acc.iter_mut().zip(values) {
                *a += v.to_f64();
            }
        }
    }

    /// Turns the fold of `planes` planes into the projection.
    pub fn finish(self, acc: &mut [f64], planes: usize) {
        if self == Projection::Mean {
            let n = planes as f64;
            for a in acc {
                *a /= n;
            }
        }
    }
}

/// Box-filter resampling of `input` pixels to `output` pixels along one
/// axis, with `scale` input pixels per output pixel; Pillow's `BOX`
/// coefficients.
#[derive(Debug, Clone)]
pub struct Resample {
    /// Per output pixel: the first input pixel and the (normalised) weights
    /// of it and the following ones.
    taps: Vec<(usize, Vec<f32>)>,
}

impl Resample {
    /// `input` pixels to `output` pixels at `input / output` per pixel.
    pub fn new(input: usize, output: usize) -> Resample {
        Resample::with_scale(input, output, input as f64 / output as f64)
    }

    /// With an explicit scale: `2^k` for pyramid tiles, whose last output
    /// pixel averages what remains of its block.
    pub fn with_scale(input: usize, output: usize, scale: f64) -> Resample {
        Resample::with_box(input, output, 0.0, scale)
    }

    /// Output pixel `i` centred at `start + (i + 0.5) · scale` input
    /// pixels, as Pillow's `resize(box=…)` places it: a box that starts
    /// between input pixels, such as a region read from a coarser pyramid
    /// level.
    pub fn with_box(input: usize, output: usize, start: f64, scale: f64) -> Resample {
        let filterscale = scale.max(1.0);
        let support = 0.5 * filterscale;
        let taps = (0..output)
            .map(|i| {
                let center = start + (i as f64 + 0.5) * scale;
                let first = ((center - support + 0.5).floor().max(0.0) as usize).min(input);
                let last = ((center + support + 0.5).floor().max(0.0) as usize).min(input);
                let mut weights: Vec<f32> = (first..last)
                    .map(|x| {
                        let t = (x as f64 - center + 0.5) / filterscale;
                        if t > -0.5 && t <= 0.5 {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let total: f32 = weights.iter().sum();
                if total > 0.0 {
                    weights.iter_mut().for_each(|w| *w /= total);
                } else if let Some(nearest) = weights.first_mut() {
                    *nearest = 1.0;
                }
                (first, weights)
            })
            .collect();
        Resample { taps }
    }

    /// Output pixels.
    pub fn len(&self) -> usize {
        self.taps.len()
    }

    /// Whether there is no output pixel.
    pub fn is_empty(&self) -> bool {
        self.taps.is_empty()
    }

    /// Whether every output pixel is the input pixel of its index.
    fn is_identity(&self) -> bool {
        self.taps
            .iter()
            .enumerate()
            .all(|(i, (first, weights))| *first == i && weights[..] == [1.0])
    }

    /// The input range output pixel `i` reads.
    fn span(&self, i: usize) -> std::ops::Range<usize> {
        let (first, weights) = &self.taps[i];
        *first..first + weights.len()
    }
}

/// How channel values become a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every active channel in its colour, added.
    Color,
    /// The first active channel, grey.
    Grey,
}

/// An active channel of a composite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layer {
    /// Window start (black).
    pub start: f64,
    /// Window end (full colour).
    pub end: f64,
    /// Colour.
    pub color: [u8; 3],
}

/// Where the output rows are gathered.
enum Picture {
    /// Output rows averaging several input rows, in `f32` RGB until the end.
    Sums(Vec<f32>),
    /// Output rows that are input rows (a tile at its level's scale), as
    /// the final bytes: RGB, or grey in greyscale mode.
    Bytes(Vec<u8>),
}

/// Accumulates the composite of bands of region rows into the output
/// picture: windowing and colour per input pixel, box resampling across
/// and then down, rounding to 8 bits at the end. Holds the output (as
/// `f32` RGB) and one row of scratch.
pub struct Compositor {
    layers: Vec<Layer>,
    mode: Mode,
    columns: Resample,
    rows: Resample,
    /// For each input row, the output rows it contributes to.
    row_targets: Vec<Vec<(usize, f32)>>,
    /// Whether output columns are the input columns (a tile at its level's
    /// scale), so that the row needs no resampling.
    columns_identity: bool,
    picture: Picture,
    /// One layer's values over the row.
    value_row: Vec<f32>,
    /// The row's red, green and blue sums.
    component_rows: [Vec<f32>; 3],
    /// The row's red, green and blue bytes, where they are final.
    component_bytes: [Vec<u8>; 3],
    rgb_row: Vec<f32>,
    resampled_row: Vec<f32>,
}

impl Compositor {
    /// A composite of `layers` over a region of `columns` × `rows` input
    /// pixels resampled as given.
    pub fn new(
        layers: Vec<Layer>,
        mode: Mode,
        columns: Resample,
        rows: Resample,
        input_rows: usize,
    ) -> Compositor {
        let mut row_targets = vec![Vec::new(); input_rows];
        for out in 0..rows.len() {
            let span = rows.span(out);
            for (y, w) in span.zip(&rows.taps[out].1) {
                if *w > 0.0 {
                    row_targets[y].push((out, *w));
                }
            }
        }
        let (width, height) = (columns.len(), rows.len());
        let input_columns = columns.taps.last().map_or(0, |(first, w)| first + w.len());
        let columns_identity = columns.is_identity();
        let picture = if rows.is_identity() && input_rows == height {
            let channels = if mode == Mode::Grey { 1 } else { 3 };
            Picture::Bytes(vec![0; width * height * channels])
        } else {
            Picture::Sums(vec![0.0; width * height * 3])
        };
        let direct = columns_identity && matches!(picture, Picture::Bytes(_));
        Compositor {
            layers,
            mode,
            columns_identity,
            picture,
            value_row: vec![0.0; input_columns],
            component_rows: std::array::from_fn(|_| vec![0.0; input_columns]),
            // each row's buffers for the way it is written: final bytes
            // directly, or an interleaved row (resampled across unless
            // columns are one to one)
            component_bytes: std::array::from_fn(|_| {
                vec![0; if direct { input_columns } else { 0 }]
            }),
            rgb_row: vec![0.0; if direct { 0 } else { input_columns * 3 }],
            resampled_row: vec![
                0.0;
                if direct || columns_identity {
                    0
                } else {
                    width * 3
                }
            ],
            columns,
            rows,
            row_targets,
        }
    }

    /// Adds input row `y` of the region, whose channel values (one slice
    /// per layer, region columns only) are `values`.
    pub fn add_row<V: crate::Sample>(&mut self, y: usize, values: &[&[V]]) {
        let Some(targets) = self.row_targets.get(y) else {
            return;
        };
        if targets.is_empty() {
            return;
        }
        // layer by layer over the row into one plane per colour component
        // (each pixel's sum still adds the layers in order), so that each
        // loop is one simple pass that vectorises; a component a colour
        // lacks is not touched, as adding zero would change nothing
        let columns = self.value_row.len();
        // greyscale keeps its one value in the red row
        let components = match self.mode {
            Mode::Color => 3,
            Mode::Grey => 1,
        };
        for sums in &mut self.component_rows[..components] {
            sums.fill(0.0);
        }
        let used = match self.mode {
            Mode::Color => self.layers.len(),
            Mode::Grey => self.layers.len().min(1),
        };
        for (layer, channel) in self.layers[..used].iter().zip(values) {
            let (start, scale) = (layer.start, 1.0 / (layer.end - layer.start));
            let value = |raw: f64| {
                let v = ((raw - start) * scale).clamp(0.0, 1.0);
                if v.is_nan() {
                    0.0
                } else {
                    v as f32
                }
            };
            let known = channel.len().min(columns);
            if V::HISTOGRAM_BINS.is_some() {
                // 8- and 16-bit samples are exact in f32, and four of them
                // fit a vector where two f64 do; the window's bounds, rounded
                // to f32, move a value by far less than an 8-bit step
                let (start, scale) = (start as f32, scale as f32);
                for (v, raw) in self.value_row[..known].iter_mut().zip(&channel[..known]) {
                    let x = ((raw.to_f64() as f32 - start) * scale).clamp(0.0, 1.0);
                    *v = if x.is_nan() { 0.0 } else { x };
                }
            } else {
                for (v, raw) in self.value_row[..known].iter_mut().zip(&channel[..known]) {
                    *v = value(raw.to_f64());
                }
            }
            // columns the band does not reach read as zeros
            self.value_row[known..].fill(value(0.0));
            match self.mode {
                Mode::Color => {
                    for (sums, c) in self.component_rows.iter_mut().zip(layer.color) {
                        if c == 0 {
                            continue;
                        }
                        let c = f32::from(c) / 255.0;
                        for (sum, v) in sums.iter_mut().zip(&self.value_row) {
                            *sum += v * c;
                        }
                    }
                }
                Mode::Grey => self.component_rows[0].copy_from_slice(&self.value_row),
            }
        }
        for sums in &mut self.component_rows[..components] {
            for v in sums.iter_mut() {
                *v = v.clamp(0.0, 1.0) * 255.0;
            }
        }
        let width = self.columns.len();
        if let (true, Picture::Bytes(bytes)) = (self.columns_identity, &mut self.picture) {
            // the one target is row `y` itself, at weight 1: its final bytes
            // (a tile at its level's scale), component by component, then
            // interleaved
            for (row, sums) in self.component_bytes[..components]
                .iter_mut()
                .zip(&self.component_rows)
            {
                for (b, v) in row.iter_mut().zip(sums) {
                    *b = round_to_byte(*v);
                }
            }
            match self.mode {
                Mode::Color => {
                    let row = &mut bytes[y * width * 3..(y + 1) * width * 3];
                    let [r, g, b] = &self.component_bytes;
                    for (((rgb, r), g), b) in row.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
                        rgb.copy_from_slice(&[*r, *g, *b]);
                    }
                }
                Mode::Grey => bytes[y * width..(y + 1) * width]
                    .copy_from_slice(&self.component_bytes[0][..width]),
            }
            return;
        }
        let [r, g, b] = &self.component_rows;
        let (g, b) = match self.mode {
            Mode::Color => (g, b),
            Mode::Grey => (r, r),
        };
        for (((rgb, r), g), b) in self.rgb_row.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
            rgb.copy_from_slice(&[*r, *g, *b]);
        }
        let resampled = if self.columns_identity {
            &self.rgb_row
        } else {
            for (out, (first, weights)) in self.columns.taps.iter().enumerate() {
                let mut rgb = [0f32; 3];
                for (i, w) in weights.iter().enumerate() {
                    let x = first + i;
                    for (k, sum) in rgb.iter_mut().enumerate() {
                        *sum += self.rgb_row[x * 3 + k] * w;
                    }
                }
                self.resampled_row[out * 3..out * 3 + 3].copy_from_slice(&rgb);
            }
            &self.resampled_row
        };
        match &mut self.picture {
            Picture::Sums(sums) => {
                for &(out, w) in targets {
                    let row = &mut sums[out * width * 3..(out + 1) * width * 3];
                    for (a, v) in row.iter_mut().zip(resampled) {
                        *a += v * w;
                    }
                }
            }
            // the one target is row `y` itself, at weight 1
            Picture::Bytes(bytes) => match self.mode {
                Mode::Color => {
                    let row = &mut bytes[y * width * 3..(y + 1) * width * 3];
                    for (b, v) in row.iter_mut().zip(resampled) {
                        *b = round_to_byte(*v);
                    }
                }
                Mode::Grey => {
                    let row = &mut bytes[y * width..(y + 1) * width];
                    for (b, v) in row.iter_mut().zip(resampled.chunks_exact(3)) {
                        *b = round_to_byte(v[0]);
                    }
                }
            },
        }
    }

    /// Output size `(width, height)`.
    pub fn size(&self) -> (usize, usize) {
        (self.columns.len(), self.rows.len())
    }

    /// The picture: RGB bytes, or grey bytes in greyscale mode.
    pub fn finish(self) -> Vec<u8> {
        match (self.picture, self.mode) {
            (Picture::Bytes(bytes), _) => bytes,
            (Picture::Sums(sums), Mode::Color) => sums.into_iter().map(round_to_byte).collect(),
            (Picture::Sums(sums), Mode::Grey) => {
                sums.chunks_exact(3).map(|p| round_to_byte(p[0])).collect()
            }
        }
    }
}

/// An 8-bit channel value of the picture, rounded half up.
fn round_to_byte(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_lists_parse_as_omero_writes_them() {
        let parsed = parse_channels("1|100:5000$FF0000,2|0:4095$00ff00,-3", 3).unwrap();
        assert_eq!(
            parsed,
            vec![
                ChannelSpec {
                    channel: 0,
                    active: true,
                    window: Some((100.0, 5000.0)),
                    color: Some([255, 0, 0])
                },
                ChannelSpec {
                    channel: 1,
                    active: true,
                    window: Some((0.0, 4095.0)),
                    color: Some([0, 255, 0])
                },
                ChannelSpec {
                    channel: 2,
                    active: false,
                    window: None,
                    color: None
                },
            ]
        );
        for (bad, names) in [
            ("4", "\"4\""),
            ("1|5:2", "\"1|5:2\""),
            ("1$GG0000", "\"1$GG0000\""),
            ("x", "\"x\""),
            ("1,,2", "\"\""),
            ("1,1", "\"1\""),
            ("1|a:2", "\"1|a:2\""),
        ] {
            let e = parse_channels(bad, 3).unwrap_err().to_string();
            assert!(e.contains(names), "{bad}: {e}");
        }
    }

    #[test]
    fn box_resampling_averages_blocks() {
        // 2x: mean of pairs; the odd last pixel alone
        let r = Resample::with_scale(5, 3, 2.0);
        let spans: Vec<_> = (0..3).map(|i| r.span(i)).collect();
        assert_eq!(spans, vec![0..2, 2..4, 4..5]);
        // upsampling repeats pixels
        let r = Resample::new(2, 4);
        let firsts: Vec<usize> = (0..4)
            .map(|i| {
                let (first, w) = &r.taps[i];
                first + w.iter().position(|w| *w > 0.0).unwrap()
            })
            .collect();
        assert_eq!(firsts, vec![0, 0, 1, 1]);
    }

    #[test]
    fn composite_adds_colours_and_clamps() {
        let layers = vec![
            Layer {
                start: 0.0,
                end: 10.0,
                color: [255, 0, 0],
            },
            Layer {
                start: 0.0,
                end: 10.0,
                color: [255, 255, 0],
            },
        ];
        let mut c = Compositor::new(
            layers,
            Mode::Color,
            Resample::new(2, 2),
            Resample::new(1, 1),
            1,
        );
        c.add_row(0, &[&[5.0, 20.0], &[5.0, -3.0]]);
        // pixel 0: red 0.5 + 0.5 = 1 → 255, green 0.5 → 128; pixel 1: red 1
        assert_eq!(c.finish(), vec![255, 128, 0, 255, 0, 0]);
    }

    #[test]
    fn maxima_fold_in_the_sample_type_and_keep_nan() {
        let mut acc = [1u16, 5, 0];
        Projection::fold_max(&mut acc, &[3, 2, 0]);
        assert_eq!(acc, [3, 5, 0]);
        let mut acc = [1.0f32, f32::NAN, 3.0];
        Projection::fold_max(&mut acc, &[2.0, 0.0, f32::NAN]);
        assert_eq!(acc[0], 2.0);
        assert!(acc[1].is_nan() && acc[2].is_nan());
    }

    #[test]
    fn a_tile_at_scale_gives_the_bytes_of_a_resampled_composite() {
        // the same pixels through the direct path (rows and columns one to
        // one) and through the summing path (rows resampled 2 → 1 from a
        // doubled row): the same picture, for narrow and wide samples
        let layers = vec![
            Layer {
                start: 100.0,
                end: 4100.0,
                color: [255, 0, 128],
            },
            Layer {
                start: 0.0,
                end: 1000.0,
                color: [0, 255, 255],
            },
        ];
        let red: [u16; 4] = [0, 1100, 3000, 65535];
        let green: [u16; 4] = [999, 250, 0, 500];
        for mode in [Mode::Color, Mode::Grey] {
            let mut direct = Compositor::new(
                layers.clone(),
                mode,
                Resample::new(4, 4),
                Resample::new(1, 1),
                1,
            );
            direct.add_row(0, &[&red[..], &green[..]]);
            let mut summed = Compositor::new(
                layers.clone(),
                mode,
                Resample::new(4, 4),
                Resample::new(2, 1),
                2,
            );
            let wide: Vec<Vec<f64>> = [&red, &green]
                .iter()
                .map(|c| c.iter().map(|v| f64::from(*v)).collect())
                .collect();
            summed.add_row(0, &[&wide[0][..], &wide[1][..]]);
            summed.add_row(1, &[&wide[0][..], &wide[1][..]]);
            let (direct, summed) = (direct.finish(), summed.finish());
            assert_eq!(direct, summed, "{mode:?}");
            let expected_first = match mode {
                // red 0 → 0; green 999/1000 of 255 → 255 (rounded); blue
                // 0 + 999/1000 → clamps at 1 → 255
                Mode::Color => vec![0, 255, 255],
                Mode::Grey => vec![0],
            };
            assert_eq!(
                direct[..expected_first.len()],
                expected_first[..],
                "{mode:?}"
            );
        }
    }
}
