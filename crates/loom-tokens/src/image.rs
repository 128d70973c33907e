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
/// Anthropic's ceiling per image, also used when the size is unknown.
pub const ANTHROPIC_MAX: usize = 1600;
/// Gemini tokens per 768x768 tile (and per image of at most 384x384).
pub const GEMINI_TILE: usize = 258;

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

/// OpenAI's tile formula (gpt-4o, gpt-4.1, gpt-4-turbo, o1, o3...).
///
/// `low` detail is 85. Otherwise: scale to fit in 2048x2048, then scale so the shortest
/// side is 768 (only ever down), dimensions rounded to whole pixels; then 170 per
/// 512x512 tile plus 85. Unknown size: 765 (1024x1024).
pub fn openai_tokens(size: Option<(u32, u32)>, detail: Detail) -> usize {
    if detail == Detail::Low {
        return OPENAI_LOW_DETAIL;
    }
    let Some((width, height)) = size else { return OPENAI_UNKNOWN_SIZE };
    let (mut width, mut height) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let longest = width.max(height);
    if longest > 2048.0 {
        let scale = 2048.0 / longest;
        (width, height) = ((width * scale).round().max(1.0), (height * scale).round().max(1.0));
    }
    let shortest = width.min(height);
    if shortest > 768.0 {
        let scale = 768.0 / shortest;
        (width, height) = ((width * scale).round().max(1.0), (height * scale).round().max(1.0));
    }
    let tiles = (width / 512.0).ceil() * (height / 512.0).ceil();
    170 * tiles as usize + 85
}

/// Anthropic's documented estimate: `width * height / 750`, after scaling the long edge
/// down to 1568, capped at 1600. Unknown size: 1600.
pub fn anthropic_tokens(size: Option<(u32, u32)>) -> usize {
    let Some((width, height)) = size else { return ANTHROPIC_MAX };
    let (mut width, mut height) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let longest = width.max(height);
    if longest > 1568.0 {
        let scale = 1568.0 / longest;
        (width, height) = ((width * scale).round(), (height * scale).round());
    }
    ((width * height / 750.0).ceil() as usize).clamp(1, ANTHROPIC_MAX)
}

/// Gemini's documented rule: 258 for images up to 384x384, else 258 per 768x768 tile.
/// Unknown size: 258.
pub fn gemini_tokens(size: Option<(u32, u32)>) -> usize {
    match size {
        Some((width, height)) if width > 384 || height > 384 => {
            GEMINI_TILE * width.div_ceil(768).max(1) as usize * height.div_ceil(768).max(1) as usize
        }
        _ => GEMINI_TILE,
    }
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
