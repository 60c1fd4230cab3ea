//! MetaMorph STK: one page whose planes follow each other, counted by
//! UIC2tag (whose ZDistance and times decide the axis), UIC1tag marking
//! the file.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::*;

/// The planes of a MetaMorph STK file, from its first page's UIC2tag (six
/// little-endian LONGs per plane: ZDistance as a rational, then creation and
/// modification dates and times), read as tifffile reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StkPlanes {
    /// Planes (UIC2tag's count).
    pub count: u64,
    /// `Z` where every plane has a non-zero ZDistance, else `T` where each
    /// plane was created at another time than the one before, else `I`
    /// (unlabelled), as tifffile decides.
    pub axis: char,
}

/// UIC1tag (whose presence makes a file STK, as tifffile decides) and
/// UIC2tag.
pub(crate) const UIC1_TAG: u16 = 33628;
pub(crate) const UIC2_TAG: u16 = 33629;
/// Bytes of one plane's UIC2tag entry.
pub(crate) const UIC2_PLANE_BYTES: u64 = 24;

/// The STK planes of the IFD at `ifd`, or `None` where it is not an STK
/// page of several planes. Only little-endian files, whose UIC2tag is typed
/// RATIONAL, as tifffile requires.
pub(crate) fn read_planes(
    file: &File,
    ifd: u64,
    big_endian: bool,
    bigtiff: bool,
    file_len: u64,
    limits: &Limits,
) -> Result<Option<StkPlanes>, TiffError> {
    if big_endian {
        return Ok(None);
    }
    let word = |at: u64, len: usize| -> Result<u64, TiffError> {
        let mut bytes = [0u8; 8];
        file.read_exact_at(&mut bytes[..len], at)?;
        Ok(u64::from_le_bytes(bytes))
    };
    let (count_len, entry_len, value_len) = if bigtiff { (8, 20, 8) } else { (2, 12, 4) };
    // the directory was read by the decoder already, so it lies in the file
    let entries = word(ifd, count_len)?.min(u64::from(u16::MAX));
    let (mut uic1, mut uic2) = (false, None);
    for i in 0..entries {
        let at = ifd + count_len as u64 + i * entry_len;
        if at + entry_len > file_len {
            break;
        }
        let tag = word(at, 2)? as u16;
        let kind = word(at + 2, 2)?;
        let count = word(at + 4, value_len)?;
        let value = word(at + 4 + value_len as u64, value_len)?;
        match tag {
            UIC1_TAG => uic1 = true,
            UIC2_TAG if kind == 5 => uic2 = Some((count, value)),
            _ => {}
        }
    }
    let Some((count, offset)) = uic2.filter(|(count, _)| uic1 && *count > 1) else {
        return Ok(None);
    };
    if count > limits.max_pages {
        return Err(TiffError::too_large(
            Limit::MaxPages,
            format!(
                "the MetaMorph UIC2tag counts {count} planes, more than the configured maximum of \
             {} pages",
                limits.max_pages
            ),
        ));
    }
    // checked: the count and the offset come from the file
    let end = count
        .checked_mul(UIC2_PLANE_BYTES)
        .and_then(|n| n.checked_add(offset));
    if end.is_none_or(|end| end > file_len) {
        return Err(TiffError::Format(format!(
            "the MetaMorph UIC2tag of {count} planes at offset {offset} runs past the file's \
             {file_len} bytes (truncated?)"
        )));
    }
    let (mut every_z, mut every_time_new, mut previous_time) = (true, true, None);
    let mut block = vec![0u8; 4096 * UIC2_PLANE_BYTES as usize];
    let mut plane = 0;
    while plane < count {
        let n = (count - plane).min(4096);
        let bytes = &mut block[..(n * UIC2_PLANE_BYTES) as usize];
        file.read_exact_at(bytes, offset + plane * UIC2_PLANE_BYTES)?;
        for entry in bytes.chunks_exact(UIC2_PLANE_BYTES as usize) {
            let long = |k: usize| u32::from_le_bytes(entry[4 * k..4 * k + 4].try_into().unwrap());
            // ZDistance = numerator / denominator; 0/0 is NaN, which is not 0
            every_z &= !(long(0) == 0 && long(1) != 0);
            let time = long(3);
            every_time_new &= previous_time != Some(time);
            previous_time = Some(time);
        }
        plane += n;
    }
    let axis = if every_z {
        'Z'
    } else if every_time_new {
        'T'
    } else {
        'I'
    };
    Ok(Some(StkPlanes { count, axis }))
}

/// A MetaMorph STK file as tifffile reads it: one page whose planes follow
/// its data back to back, as many as UIC2tag counts, along Z, T or an
/// unlabelled axis ([`StkPlanes::axis`]).
pub(crate) fn interpret(
    chain: &IfdChain,
    stk: StkPlanes,
    limits: &Limits,
) -> Result<Interpretation, Rejection> {
    let pages = first_kind_pages(chain).len() as u64;
    let Some(planes) = contiguous_planes(
        chain,
        stk.count,
        pages,
        limits,
        &format!("the MetaMorph UIC2tag declares {}", stk.count),
    )?
    else {
        return Err(format!(
            "UIC2tag counts {} planes but the first page's data is not followed by them \
             (uncompressed, back to back)",
            stk.count
        )
        .into());
    };
    let mut axes = vec![(stk.axis, stk.count)];
    if let Ok(letters) = crate::canonical_letters(&axes) {
        axes[0].0 = letters[0];
    }
    Ok(Interpretation {
        contiguous: Some(planes),
        ..Interpretation::of_pages(
            Flavour::Stk,
            axes,
            // below max_pages, checked by stk_planes
            (0..stk.count as usize).map(Some).collect(),
            resolution_sizes(chain, None),
        )
    }
    .squeezed())
}
