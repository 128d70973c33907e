//! Image tokens: provider formulas, and image sizes read from `data:` URL headers.
//!
//! Only headers are parsed (PNG `IHDR`, GIF logical screen, WebP `VP8`/`VP8L`/`VP8X`,
//! JPEG `SOFn`); nothing is decoded, and the base64 payload is decoded only as far as
//! the header reaches.

use std::io::{self, Read};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Tokens of a low-detail image on OpenAI models.
pub const OPENAI_LOW_DETAIL: usize = 85;
/// OpenAI tokens of a high-detail image of unknown size: the cost of 1024x1024.
pub const OPENAI_UNKNOWN_SIZE: usize = 765;
/// OpenAI's most tokens for one image: 2048x768 after scaling, 4x2 tiles.
pub const OPENAI_MAX: usize = 85 + 170 * 8;
/// Anthropic's ceiling per image, also used when the size is unknown.
pub const ANTHROPIC_MAX: usize = 1600;
/// Gemini tokens per 768x768 tile (and per image of at most 384x384).
pub const GEMINI_TILE: usize = 258;
/// Gemini's most tokens for one image: 3072x3072 after scaling, 4x4 tiles.
pub const GEMINI_MAX: usize = GEMINI_TILE * 16;
/// The most tokens any provider's formula gives one image, whatever its header claims.
pub const MAX_TOKENS: usize = GEMINI_MAX;

/// OpenAI scales high-detail images to fit 2048x2048, then the short side to 768.
const OPENAI_FIT: u64 = 2048;
const OPENAI_SHORT_SIDE: u64 = 768;
const OPENAI_TILE_SIDE: u64 = 512;
/// Anthropic scales the long edge to at most 1568 px.
const ANTHROPIC_LONG_EDGE: u64 = 1568;
/// Gemini scales larger images to fit 3072x3072, keeping the aspect ratio.
const GEMINI_FIT: u64 = 3072;
const GEMINI_SMALL_SIDE: u64 = 384;
const GEMINI_TILE_SIDE: u64 = 768;

/// OpenAI's `detail` setting of an image part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `low`: a fixed 85 tokens.
    Low,
    /// `high`, `auto` or absent: the tile formula.
    High,
}

impl Detail {
    /// From the wire value; anything but `low` counts as high (the upper bound of `auto`).
    pub fn from_wire(detail: Option<&str>) -> Detail {
        match detail {
            Some(detail) if detail.eq_ignore_ascii_case("low") => Detail::Low,
            _ => Detail::High,
        }
    }
}

// Sizes come from untrusted headers (up to 2^32 - 1 a side): all arithmetic below is in
// u64, where `side * limit` (< 2^44) cannot overflow, and every result is clamped to
// the formula's maximum.

/// `value * numerator / denominator` rounded to the nearest whole pixel (halves up), at
/// least 1. `denominator` is never 0: it is a side longer than some limit.
fn scale_side(value: u64, numerator: u64, denominator: u64) -> u64 {
    (value.saturating_mul(numerator).saturating_mul(2).saturating_add(denominator) / denominator.max(1) / 2)
        .max(1)
}

/// `(width, height)` scaled down (never up) so the longer side is at most `limit`.
fn fit_within(width: u64, height: u64, limit: u64) -> (u64, u64) {
    let longest = width.max(height);
    if longest <= limit {
        return (width, height);
    }
    (scale_side(width, limit, longest), scale_side(height, limit, longest))
}

/// Tiles of `side` x `side` covering `width` x `height`.
fn tiles(width: u64, height: u64, side: u64) -> u64 {
    width.div_ceil(side).saturating_mul(height.div_ceil(side))
}

fn to_usize(tokens: u64, max: usize) -> usize {
    usize::try_from(tokens).unwrap_or(max).min(max)
}

/// OpenAI's tile formula (gpt-4o, gpt-4.1, gpt-4-turbo, o1, o3...), at most [`OPENAI_MAX`].
///
/// `low` detail is 85. Otherwise: scale to fit in 2048x2048, then scale so the shortest
/// side is 768 (only ever down), dimensions rounded to whole pixels; then 170 per
/// 512x512 tile plus 85. Unknown size: 765 (1024x1024). Documented in OpenAI's vision
/// guide ("Calculating costs": platform.openai.com/docs/guides/images-vision).
pub fn openai_tokens(size: Option<(u32, u32)>, detail: Detail) -> usize {
    if detail == Detail::Low {
        return OPENAI_LOW_DETAIL;
    }
    let Some((width, height)) = size else { return OPENAI_UNKNOWN_SIZE };
    let (width, height) = fit_within(u64::from(width.max(1)), u64::from(height.max(1)), OPENAI_FIT);
    let shortest = width.min(height);
    let (width, height) = if shortest > OPENAI_SHORT_SIDE {
        (scale_side(width, OPENAI_SHORT_SIDE, shortest), scale_side(height, OPENAI_SHORT_SIDE, shortest))
    } else {
        (width, height)
    };
    let tokens = tiles(width, height, OPENAI_TILE_SIDE).saturating_mul(170).saturating_add(85);
    to_usize(tokens, OPENAI_MAX)
}

/// Anthropic's documented estimate: `width * height / 750`, after scaling the long edge
/// down to 1568, capped at 1600 (images past ~1.15 megapixels are scaled down first).
/// Unknown size: 1600. Documented in Anthropic's vision guide ("Evaluate image size":
/// docs.anthropic.com/en/docs/build-with-claude/vision); newer models that count 28 px
/// patches at higher resolutions report more, and their reported usage wins.
pub fn anthropic_tokens(size: Option<(u32, u32)>) -> usize {
    let Some((width, height)) = size else { return ANTHROPIC_MAX };
    let (width, height) = fit_within(u64::from(width.max(1)), u64::from(height.max(1)), ANTHROPIC_LONG_EDGE);
    to_usize(width.saturating_mul(height).div_ceil(750).max(1), ANTHROPIC_MAX)
}

/// Gemini's documented rule: 258 for images up to 384x384, else 258 per 768x768 tile,
/// after the provider scales larger images to fit 3072x3072 (so at most 16 tiles,
/// [`GEMINI_MAX`]). Unknown size: 258. Documented in Gemini's token guide
/// (ai.google.dev/gemini-api/docs/tokens, "Multimodal tokens") and Vertex AI's image
/// limits ("larger images are scaled down ... to fit a maximum resolution of 3072 x
/// 3072 while preserving their original aspect ratio").
pub fn gemini_tokens(size: Option<(u32, u32)>) -> usize {
    let Some((width, height)) = size else { return GEMINI_TILE };
    let (width, height) = fit_within(u64::from(width), u64::from(height), GEMINI_FIT);
    if width <= GEMINI_SMALL_SIDE && height <= GEMINI_SMALL_SIDE {
        return GEMINI_TILE;
    }
    let tiles = tiles(width, height, GEMINI_TILE_SIDE).max(1);
    to_usize(tiles.saturating_mul(GEMINI_TILE as u64), GEMINI_MAX)
}

/// Width and height of the image in a `data:image/...;base64,` URL, read from the header
/// of a PNG, JPEG, GIF or WebP. `None` for remote URLs and anything unreadable.
pub fn data_url_size(url: &str) -> Option<(u32, u32)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    if !meta.ends_with(";base64") {
        return None;
    }
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut reader = base64::read::DecoderReader::new(payload.trim().as_bytes(), &ENGINE);
    image_size(&mut reader)
}

/// Width and height from the header of a PNG, JPEG, GIF or WebP byte stream.
pub fn image_size(reader: &mut impl Read) -> Option<(u32, u32)> {
    let mut head = [0u8; 30];
    let filled = read_up_to(reader, &mut head).ok()?;
    let head = &head[..filled];
    let size = if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.get(12..16)? == b"IHDR" {
        (be32(head.get(16..20)?), be32(head.get(20..24)?))
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        (u32::from(le16(head.get(6..8)?)), u32::from(le16(head.get(8..10)?)))
    } else if head.starts_with(b"RIFF") && head.get(8..12)? == b"WEBP" {
        webp_size(head)?
    } else if head.starts_with(&[0xFF, 0xD8]) {
        jpeg_size(&mut (&head[2..]).chain(reader))?
    } else {
        return None;
    };
    (size.0 > 0 && size.1 > 0).then_some(size)
}

fn webp_size(head: &[u8]) -> Option<(u32, u32)> {
    match head.get(12..16)? {
        // lossy: frame tag (3), start code 9d 01 2a (3), 14-bit width and height
        b"VP8 " if head.get(23..26)? == [0x9D, 0x01, 0x2A] => {
            Some((u32::from(le16(head.get(26..28)?) & 0x3FFF), u32::from(le16(head.get(28..30)?) & 0x3FFF)))
        }
        // lossless: signature 0x2f, then 14 bits width-1, 14 bits height-1
        b"VP8L" if head.get(20) == Some(&0x2F) => {
            let bits = u32::from_le_bytes(head.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        // extended: 24-bit canvas width-1 and height-1
        b"VP8X" => {
            let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            Some((le24(head.get(24..27)?) + 1, le24(head.get(27..30)?) + 1))
        }
        _ => None,
    }
}

/// Walks JPEG segments (after SOI) to the first start-of-frame marker.
fn jpeg_size(reader: &mut impl Read) -> Option<(u32, u32)> {
    let mut byte = [0u8; 1];
    loop {
        reader.read_exact(&mut byte).ok()?;
        if byte[0] != 0xFF {
            return None;
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            reader.read_exact(&mut byte).ok()?;
            marker = byte[0];
        }
        match marker {
            // standalone markers: TEM, RSTn
            0x01 | 0xD0..=0xD7 => continue,
            // EOI or SOS before any frame header
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let mut length = [0u8; 2];
        reader.read_exact(&mut length).ok()?;
        let length = u16::from_be_bytes(length);
        if length < 2 {
            return None;
        }
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let mut frame = [0u8; 5];
            reader.read_exact(&mut frame).ok()?;
            let height = u16::from_be_bytes([frame[1], frame[2]]);
            let width = u16::from_be_bytes([frame[3], frame[4]]);
            return Some((u32::from(width), u32::from(height)));
        }
        let skip = u64::from(length - 2);
        if io::copy(&mut reader.take(skip), &mut io::sink()).ok()? != skip {
            return None;
        }
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn le16(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[0], bytes[1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_formula_matches_the_documented_examples() {
        assert_eq!(openai_tokens(Some((4000, 3000)), Detail::Low), 85);
        assert_eq!(openai_tokens(None, Detail::Low), 85);
        assert_eq!(openai_tokens(Some((1024, 1024)), Detail::High), 765);
        assert_eq!(openai_tokens(Some((2048, 4096)), Detail::High), 1105);
        assert_eq!(openai_tokens(None, Detail::High), 765);
        // small images are not scaled up: one tile
        assert_eq!(openai_tokens(Some((128, 64)), Detail::High), 255);
        assert_eq!(openai_tokens(Some((512, 512)), Detail::High), 255);
        assert_eq!(openai_tokens(Some((513, 512)), Detail::High), 425);
        // 2049x513 -> 2048x512.75 -> 513 rows: 4x2 tiles; 2050x513 -> 2048x512: 4x1
        assert_eq!(openai_tokens(Some((2049, 513)), Detail::High), 85 + 8 * 170);
        assert_eq!(openai_tokens(Some((2050, 513)), Detail::High), 85 + 4 * 170);
        assert_eq!(Detail::from_wire(Some("LOW")), Detail::Low);
        assert_eq!(Detail::from_wire(Some("auto")), Detail::High);
        assert_eq!(Detail::from_wire(None), Detail::High);
    }

    #[test]
    fn anthropic_and_gemini_rules() {
        assert_eq!(anthropic_tokens(Some((1000, 1000))), 1334);
        assert_eq!(anthropic_tokens(Some((200, 200))), 54);
        assert_eq!(anthropic_tokens(Some((4000, 4000))), 1600);
        assert_eq!(anthropic_tokens(None), 1600);
        assert_eq!(gemini_tokens(Some((384, 384))), 258);
        assert_eq!(gemini_tokens(Some((1024, 1024))), 4 * 258);
        assert_eq!(gemini_tokens(None), 258);
        // scaled to fit 3072x3072 first: 6000x1500 -> 3072x768, 4x1 tiles
        assert_eq!(gemini_tokens(Some((6000, 1500))), 4 * 258);
        assert_eq!(gemini_tokens(Some((3072, 3072))), GEMINI_MAX);
    }

    #[test]
    fn any_claimed_size_is_bounded_by_the_largest_image_the_provider_keeps() {
        let extremes =
            [0, 1, 2, 383, 384, 385, 767, 768, 769, 1568, 2048, 3072, 65_535, u32::MAX - 1, u32::MAX];
        for width in extremes {
            for height in extremes {
                let size = Some((width, height));
                let openai = openai_tokens(size, Detail::High);
                assert!((255..=OPENAI_MAX).contains(&openai), "{width}x{height}: {openai}");
                let anthropic = anthropic_tokens(size);
                assert!((1..=ANTHROPIC_MAX).contains(&anthropic), "{width}x{height}: {anthropic}");
                let gemini = gemini_tokens(size);
                assert!((GEMINI_TILE..=GEMINI_MAX).contains(&gemini), "{width}x{height}: {gemini}");
            }
        }
        assert_eq!(openai_tokens(Some((u32::MAX, u32::MAX)), Detail::High), 765);
        assert_eq!(openai_tokens(Some((u32::MAX, 1)), Detail::High), 85 + 4 * 170);
        assert_eq!(openai_tokens(Some((2048, 768)), Detail::High), OPENAI_MAX);
        assert_eq!(anthropic_tokens(Some((u32::MAX, u32::MAX))), ANTHROPIC_MAX);
        assert_eq!(anthropic_tokens(Some((u32::MAX, 1))), 3);
        assert_eq!(gemini_tokens(Some((u32::MAX, u32::MAX))), GEMINI_MAX);
        assert_eq!(gemini_tokens(Some((u32::MAX, 1))), 4 * 258);
        assert_eq!(MAX_TOKENS, [OPENAI_MAX, ANTHROPIC_MAX, GEMINI_MAX].into_iter().max().unwrap());
    }

    #[test]
    fn non_base64_and_remote_urls_have_no_size() {
        assert_eq!(data_url_size("https://example.com/cat.png"), None);
        assert_eq!(data_url_size("data:image/png,rawbytes"), None);
        assert_eq!(data_url_size("data:image/png;base64,!!!!"), None);
        assert_eq!(data_url_size("data:image/png;base64,"), None);
        assert_eq!(data_url_size("data:text/plain;base64,aGVsbG8gd29ybGQ="), None);
    }
}
